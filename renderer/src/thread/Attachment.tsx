import { useCallback, useEffect, useId, useRef, useState } from 'react';
import { MEDIA_MAX_BYTES, mediaKindForMime, type MediaKind } from '../../../shared/mediaLimits';
import type { MessageView } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';

/** Meta's caption limit for images, videos and documents. */
const CAPTION_LIMIT = 1024;

type Phase = { kind: 'idle' } | { kind: 'reading'; fraction: number } | { kind: 'uploading' } | { kind: 'failed'; error: unknown };

export interface AttachmentState {
  file: File | null;
  kind: MediaKind | null;
  /** Why the file cannot go (type or size), before anything is uploaded. */
  refusal: string | null;
  previewUrl: string | null;
  caption: string;
  setCaption(caption: string): void;
  phase: Phase;
  choose(file: File): void;
  pick(): void;
  clear(): void;
  send(): void;
  input: React.ReactElement;
}

function bytes(n: number, lang: string): string {
  const mb = n / (1024 * 1024);
  return mb >= 1 ? `${new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(mb)} MB` : `${new Intl.NumberFormat(lang).format(Math.ceil(n / 1024))} KB`;
}

function readBase64(file: File, onProgress: (fraction: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    reader.onerror = () => reject(reader.error ?? new Error('read failed'));
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.readAsDataURL(file);
  });
}

/** The file chosen for sending (button, drop or paste), checked against Meta's limits, then sent with its caption. */
export function useAttachment(conversationId: number, replyTo: MessageView | null, onSent: () => void): AttachmentState {
  const { t, lang } = useI18n();
  const formatBytes = (n: number): string => bytes(n, lang);
  const rpc = useRpc();
  const [file, setFile] = useState<File | null>(null);
  const [caption, setCaption] = useState('');
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const [previewUrl, setPreviewUrl] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const kind = file ? mediaKindForMime(file.type || 'application/octet-stream') : null;
  const refusal = !file
    ? null
    : !kind
      ? t.attachTypeRefused(file.name)
      : file.size > MEDIA_MAX_BYTES[kind]
        ? t.attachTooLarge(formatBytes(file.size), formatBytes(MEDIA_MAX_BYTES[kind]))
        : null;

  useEffect(() => {
    if (!file || !file.type.startsWith('image/')) return setPreviewUrl(null);
    const url = URL.createObjectURL(file);
    setPreviewUrl(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);
  const clear = useCallback(() => {
    setFile(null);
    setCaption('');
    setPhase({ kind: 'idle' });
  }, []);
  useEffect(clear, [conversationId, clear]);

  const send = (): void => {
    if (!file || refusal || phase.kind === 'reading' || phase.kind === 'uploading') return;
    void (async () => {
      try {
        setPhase({ kind: 'reading', fraction: 0 });
        const dataBase64 = await readBase64(file, (fraction) => setPhase({ kind: 'reading', fraction }));
        setPhase({ kind: 'uploading' });
        await rpc.call('messages.sendMedia', {
          conversationId,
          dataBase64,
          mimeType: file.type,
          filename: file.name,
          ...(caption.trim() ? { caption: caption.trim() } : {}),
          ...(replyTo ? { replyToMessageId: replyTo.id } : {}),
        });
        clear();
        onSent();
      } catch (error) {
        setPhase({ kind: 'failed', error });
      }
    })();
  };

  const input = (
    <input
      ref={inputRef}
      type="file"
      hidden
      accept={'image/jpeg,image/png,application/pdf,text/plain,audio/*,video/mp4,video/3gpp,.doc,.docx,.xls,.xlsx,.ppt,.pptx'}
      onChange={(e) => {
        const chosen = e.target.files?.[0];
        if (chosen) {
          setFile(chosen);
          setPhase({ kind: 'idle' });
        }
        e.target.value = '';
      }}
      data-testid="attach-input"
    />
  );
  return {
    file,
    kind,
    refusal,
    previewUrl,
    caption,
    setCaption: (c) => setCaption(c.slice(0, CAPTION_LIMIT)),
    phase,
    choose: (f) => {
      setFile(f);
      setPhase({ kind: 'idle' });
    },
    pick: () => inputRef.current?.click(),
    clear,
    send,
    input,
  };
}

/** The chosen file before it goes: preview, name and size, caption, progress, refusal or failure. */
export function Attachment({ state: a }: { state: AttachmentState }): React.JSX.Element {
  const { t, errorText, lang } = useI18n();
  const formatBytes = (n: number): string => bytes(n, lang);
  const captionId = useId();
  if (!a.file) return a.input;
  const busy = a.phase.kind === 'reading' || a.phase.kind === 'uploading';
  return (
    <section className="attachment" aria-label={t.attachmentLabel} data-testid="attachment">
      {a.input}
      <div className="attachment-file">
        {a.previewUrl ? <img src={a.previewUrl} alt={t.attachPreview(a.file.name)} className="attachment-preview" /> : <span className="attachment-icon" aria-hidden="true">📄</span>}
        <span>
          <span className="attachment-name">{a.file.name}</span>
          <span className="small muted"> · {formatBytes(a.file.size)}</span>
        </span>
      </div>
      {a.refusal ? (
        <p className="form-error" role="alert" data-testid="attach-refused">
          {a.refusal}
        </p>
      ) : (
        <div className="field">
          <label htmlFor={captionId}>{t.caption}</label>
          <input id={captionId} dir="auto" value={a.caption} maxLength={CAPTION_LIMIT} disabled={busy} onChange={(e) => a.setCaption(e.target.value)} />
        </div>
      )}
      {busy ? (
        <p className="small" role="status">
          <progress max={1} value={a.phase.kind === 'reading' ? a.phase.fraction / 2 : undefined} aria-label={t.uploading} /> {t.uploading}
        </p>
      ) : null}
      {a.phase.kind === 'failed' ? (
        <p className="form-error" role="alert">
          {t.sendFailed(errorText(a.phase.error))}
        </p>
      ) : null}
      <div className="setup-actions">
        <button type="button" className="secondary" disabled={busy} onClick={a.clear}>
          {t.cancel}
        </button>
        <button type="button" className="primary" disabled={busy || a.refusal !== null} onClick={a.send}>
          {busy ? t.sending : t.sendAttachment}
        </button>
      </div>
    </section>
  );
}
