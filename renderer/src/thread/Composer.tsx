import { useMutation, useQueryClient } from '@tanstack/react-query';
import { memo, useEffect, useId, useRef, useState } from 'react';
import { QUICK_REPLIES_MAX, type MessageView, type Template, type WindowState } from '../../../shared/rpc';
import { Attachment, useAttachment } from './Attachment';
import { splitMessage, TEXT_LIMIT } from './split';
import { keys, useTemplates, useHasRole } from '../data/queries';
import { useI18n, type Strings } from '../i18n';
import { useRpc } from '../rpc';
import { useQuickReplies } from './quickReplies';
import { SendGuard, useOutgoingCheck, useTemplateCheck, type OutgoingCheck } from '../privacy';

interface Props {
  conversationId: number;
  window: WindowState;
  replyTo: MessageView | null;
  onCancelReply(): void;
}

/**
 * Kept apart and memoised so that incoming messages, which re-render the thread, never touch the
 * text being typed: its state lives here and nowhere else.
 */
export const Composer = memo(function Composer({ conversationId, window: win, replyTo, onCancelReply }: Props): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [text, setText] = useState('');
  const [showQuick, setShowQuick] = useState(false);
  // The privacy send guard: what the core's detector found in the text about to go (nothing stored).
  const [guard, setGuard] = useState<{ parts: string[]; check: OutgoingCheck } | null>(null);
  const checkOutgoing = useOutgoingCheck();
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const quick = useQuickReplies();
  const left = useTimeLeft(win.closesAt);
  const open = win.open && (win.closesAt === null || left > 0);
  const hintId = useId();

  useEffect(() => {
    setText('');
    setGuard(null);
  }, [conversationId]);
  useEffect(() => {
    if (replyTo) inputRef.current?.focus();
  }, [replyTo]);

  const attachment = useAttachment(conversationId, replyTo, () => {
    onCancelReply();
    void qc.invalidateQueries({ queryKey: keys.messages(conversationId) });
    void qc.invalidateQueries({ queryKey: keys.allConversations });
  });
  const send = useMutation({
    // Parts go one after the other, in order, each exactly as typed (the core trims only the ends).
    mutationFn: async (parts: string[]) => {
      for (const [i, body] of parts.entries())
        await rpc.call('messages.send', { conversationId, text: body, ...(replyTo && i === 0 ? { replyToMessageId: replyTo.id } : {}) });
    },
    onSuccess: () => {
      setText('');
      onCancelReply();
      void qc.invalidateQueries({ queryKey: keys.messages(conversationId) });
      void qc.invalidateQueries({ queryKey: keys.allConversations });
    },
    onError: () => void qc.invalidateQueries({ queryKey: keys.conversation(conversationId) }),
  });

  const length = [...text].length;
  const tooLong = length > TEXT_LIMIT;
  const submit = (): void => {
    const body = text.trim();
    if (body && !tooLong && !send.isPending && open) guarded([body]);
  };
  const counterId = useId();
  const guarded = (parts: string[]): void =>
    void checkOutgoing(parts.join('\n')).then(
      (check) => (check.findings.length > 0 ? setGuard({ parts, check }) : send.mutate(parts)),
      () => send.mutate(parts), // the core checks again on send; its refusal shows as the send error
    );

  const h = Math.floor(left / 3_600_000);
  const m = Math.floor((left % 3_600_000) / 60_000);

  return (
    <div className="composer" data-testid="composer">
      <p className={`window ${open ? (left < 3_600_000 ? 'closing' : 'open') : 'closed'}`} id={hintId} data-testid="window-state">
        {open ? t.windowOpen(t.hours(h, m)) : t.windowClosed}
      </p>
      {open ? (
        <>
          {replyTo ? (
            <div className="replying">
              <span>
                {t.replyingTo}: <q>{replyTo.text ?? '…'}</q>
              </span>
              <button type="button" onClick={onCancelReply}>
                {t.cancelReply}
              </button>
            </div>
          ) : null}
          <Attachment state={attachment} />
          <form
            className="compose-row"
            onDragOver={(e) => {
              if (e.dataTransfer.types.includes('Files')) e.preventDefault();
            }}
            onDrop={(e) => {
              const file = e.dataTransfer.files[0];
              if (file) {
                e.preventDefault();
                attachment.choose(file);
              }
            }}
            onSubmit={(e) => {
              e.preventDefault();
              submit();
            }}
          >
            <label htmlFor={`composer-${conversationId}`} className="visually-hidden">
              {t.composerLabel}
            </label>
            <textarea
              id={`composer-${conversationId}`}
              ref={inputRef}
              rows={2}
              dir="auto"
              value={text}
              placeholder={t.composerPlaceholder}
              aria-describedby={`${hintId} ${counterId}`}
              aria-invalid={tooLong || undefined}
              onChange={(e) => setText(e.target.value)}
              onPaste={(e) => {
                const file = [...e.clipboardData.files].find((f) => f.type.startsWith('image/'));
                if (file) {
                  e.preventDefault();
                  attachment.choose(file);
                }
              }}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
                  e.preventDefault();
                  submit();
                }
              }}
            />
            <div className="compose-actions">
              <button type="button" className="secondary" onClick={attachment.pick}>
                {t.attach}
              </button>
              <button type="button" className="secondary" aria-expanded={showQuick} onClick={() => setShowQuick((s) => !s)}>
                {t.quickReplies}
              </button>
              <button type="submit" className="primary" disabled={send.isPending || text.trim().length === 0 || tooLong}>
                {send.isPending ? t.sending : t.send}
              </button>
            </div>
          </form>
          <p id={counterId} className={`char-count small${tooLong ? ' over' : length > TEXT_LIMIT - 300 ? ' near' : ' muted'}`} data-testid="char-count" aria-live="polite">
            {length > TEXT_LIMIT - 300 ? t.charCount(length, TEXT_LIMIT) : ''}
          </p>
          {tooLong ? (
            <div className="too-long" role="alert" data-testid="too-long">
              <p>{t.tooLong(length - TEXT_LIMIT, splitMessage(text.trim()).length)}</p>
              <button type="button" className="secondary" disabled={send.isPending || !open} onClick={() => guarded(splitMessage(text.trim()))}>
                {t.sendAsParts(splitMessage(text.trim()).length)}
              </button>
            </div>
          ) : null}
          {guard ? (
            <SendGuard
              text={guard.parts.join('\n')}
              check={guard.check}
              onConfirm={() => {
                send.mutate(guard.parts);
                setGuard(null);
              }}
              onCancel={() => {
                setGuard(null);
                inputRef.current?.focus();
              }}
            />
          ) : null}
          {send.isError ? (
            <p className="form-error" role="alert">
              {t.sendFailed(errorText(send.error))}
            </p>
          ) : null}
          {showQuick ? (
            <div className="quick-replies">
              {quick.loading ? <p className="muted small">{t.loading}</p> : null}
              {quick.loadError ? <p className="form-error">{errorText(quick.loadError)}</p> : null}
              {!quick.loading && !quick.loadError && quick.replies.length === 0 ? <p className="muted small">{t.quickRepliesEmpty}</p> : null}
              <ul>
                {quick.replies.map((r) => (
                  <li key={r.id}>
                    <button
                      type="button"
                      className="chip"
                      aria-label={t.quickReplyInsert(r.text)}
                      onClick={() => {
                        setText((cur) => (cur ? `${cur} ${r.text}` : r.text));
                        inputRef.current?.focus();
                      }}
                    >
                      {r.text}
                    </button>
                    <button type="button" className="chip-remove" aria-label={t.quickReplyRemove(r.text)} onClick={() => quick.remove(r.id)}>
                      ×
                    </button>
                  </li>
                ))}
              </ul>
              <button type="button" className="secondary small" disabled={!text.trim() || quick.saving} onClick={() => quick.add(text)}>
                {t.quickReplyAdd}
              </button>
              {quick.changeError ? (
                <p className="form-error" role="alert">
                  {(quick.changeError as { code?: string }).code === 'CONFLICT' ? t.quickRepliesFull(QUICK_REPLIES_MAX) : errorText(quick.changeError)}
                </p>
              ) : null}
            </div>
          ) : null}
        </>
      ) : (
        <TemplatePicker conversationId={conversationId} />
      )}
    </div>
  );
});

function useTimeLeft(closesAt: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  return closesAt === null ? 0 : Math.max(0, closesAt - now);
}

export function fillTemplate(body: string, values: readonly string[]): string {
  return body.replace(/\{\{(\d+)\}\}/g, (whole, n: string) => {
    const v = values[Number(n) - 1];
    return v && v.length > 0 ? v : whole;
  });
}

/** `appointment_reminder` in `en_GB` → "Appointment reminder · English (UK)", in the desk's language. */
export function templateLabel(x: Pick<Template, 'name' | 'language'>, uiLanguage: string): string {
  const words = x.name.replace(/[_-]+/g, ' ').trim();
  const name = words.charAt(0).toLocaleUpperCase() + words.slice(1);
  let language = x.language;
  try {
    language = new Intl.DisplayNames([uiLanguage], { type: 'language' }).of(x.language.replace('_', '-')) ?? x.language;
  } catch {
    // an unknown code shows as Meta gave it
  }
  return `${name} · ${language}`;
}

/** What a variable stands for, from the example Meta keeps for it (if any). */
function variableLabel(t: Strings, tpl: Template, i: number): string {
  const example = tpl.examples?.[i];
  return example ? t.templateVariableExample(i + 1, example) : t.templateVariable(i + 1);
}

function TemplatePicker({ conversationId }: { conversationId: number }): React.JSX.Element {
  const { t, errorText, lang } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const templates = useTemplates(true);
  const isAdmin = useHasRole('admin');
  const sync = useMutation({
    mutationFn: () => rpc.call('templates.sync', {}),
    onSuccess: () => void qc.invalidateQueries({ queryKey: keys.templates }),
  });
  const [choice, setChoice] = useState('');
  const [values, setValues] = useState<string[]>([]);
  // The send guard over what was typed into the variables, as the composer's over free text.
  const [guard, setGuard] = useState<{ tpl: Template; text: string; check: OutgoingCheck; flagged: number[] } | null>(null);
  const checkTemplate = useTemplateCheck();
  const approved = (templates.data ?? []).filter((x) => x.status.toUpperCase() === 'APPROVED');
  const selected: Template | undefined = approved.find((x) => `${x.name}|${x.language}` === choice);

  const send = useMutation({
    mutationFn: (tpl: Template) =>
      rpc.call('messages.sendTemplate', { conversationId, name: tpl.name, language: tpl.language, parameters: values.slice(0, tpl.parameterCount) }),
    onSuccess: () => {
      setChoice('');
      setValues([]);
      setGuard(null);
      void qc.invalidateQueries({ queryKey: keys.messages(conversationId) });
      void qc.invalidateQueries({ queryKey: keys.allConversations });
    },
  });

  if (templates.isPending) return <p className="state small">{t.loading}</p>;
  if (templates.isError) return <p className="form-error">{errorText(templates.error)}</p>;
  if (approved.length === 0)
    return (
      <div className="template-empty">
        <p className="state small">{t.templatesEmpty}</p>
        {isAdmin ? (
          <button type="button" className="secondary" disabled={sync.isPending} onClick={() => sync.mutate()}>
            {sync.isPending ? t.loading : t.templatesSync}
          </button>
        ) : null}
        {sync.isError ? <p className="form-error">{errorText(sync.error)}</p> : null}
      </div>
    );
  const complete = selected ? values.slice(0, selected.parameterCount).filter((v) => v.trim()).length === selected.parameterCount : false;
  const guarded = (tpl: Template): void =>
    void checkTemplate(tpl.bodyText, values.slice(0, tpl.parameterCount)).then(
      (checked) => (checked.check.findings.length > 0 ? setGuard({ tpl, ...checked }) : send.mutate(tpl)),
      () => send.mutate(tpl), // the core checks again on send; its refusal shows as the send error
    );

  return (
    <form
      className="template-picker"
      data-testid="template-picker"
      onSubmit={(e) => {
        e.preventDefault();
        if (selected && complete && !send.isPending) guarded(selected);
      }}
    >
      <label htmlFor="template-select">{t.templatePick}</label>
      <select
        id="template-select"
        value={choice}
        onChange={(e) => {
          setChoice(e.target.value);
          setValues([]);
          setGuard(null);
        }}
      >
        <option value="">{t.templateNone}</option>
        {approved.map((x) => (
          <option key={`${x.name}|${x.language}`} value={`${x.name}|${x.language}`}>
            {templateLabel(x, lang)}
          </option>
        ))}
      </select>
      {selected ? (
        <>
          {Array.from({ length: selected.parameterCount }, (_, i) => (
            <div className="field" key={i}>
              <label htmlFor={`tpl-var-${i}`}>{variableLabel(t, selected, i)}</label>
              <input
                id={`tpl-var-${i}`}
                value={values[i] ?? ''}
                maxLength={1024}
                onChange={(e) => {
                  const next = [...values];
                  next[i] = e.target.value;
                  setValues(next);
                  setGuard(null);
                }}
              />
            </div>
          ))}
          <div className="template-preview" aria-label={t.templatePreview}>
            <span className="small muted">{t.templatePreview}</span>
            <p data-testid="template-preview">{fillTemplate(selected.bodyText, values)}</p>
          </div>
          <button type="submit" className="primary" disabled={!complete || send.isPending}>
            {send.isPending ? t.sending : t.templateSend}
          </button>
          {guard ? (
            <SendGuard
              text={guard.text}
              check={guard.check}
              onConfirm={() => {
                send.mutate(guard.tpl);
                setGuard(null);
              }}
              onCancel={() => {
                setGuard(null);
                document.getElementById(`tpl-var-${guard.flagged[0] ?? 0}`)?.focus();
              }}
            />
          ) : null}
          {send.isError ? (
            <p className="form-error" role="alert">
              {t.sendFailed(errorText(send.error))}
            </p>
          ) : null}
        </>
      ) : null}
    </form>
  );
}
