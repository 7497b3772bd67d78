import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { keys, useConversation, useHasRole } from '../data/queries';
import { useI18n } from '../i18n';
import { formatNumber } from '../inbox';
import { ConsentPanel, ExportButton, LegalHoldToggle, RequestsList } from '../privacy';
import { useRpc } from '../rpc';

export function ContactPanel({ conversationId, onClose }: { conversationId: number; onClose(): void }): React.JSX.Element | null {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const conv = useConversation(conversationId);
  const isAdmin = useHasRole('admin');
  const contact = conv.data?.contact;
  const [name, setName] = useState('');
  const [notes, setNotes] = useState('');
  useEffect(() => {
    setName(contact?.displayName ?? '');
    setNotes(contact?.notes ?? '');
  }, [contact?.id, contact?.displayName, contact?.notes]);

  const save = useMutation({
    mutationFn: () => rpc.call('contacts.update', { contactId: contact!.id, displayName: name.trim() || null, notes }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: keys.conversation(conversationId) });
      void qc.invalidateQueries({ queryKey: keys.allConversations });
    },
  });

  if (!contact) return null;
  const dirty = name !== (contact.displayName ?? '') || notes !== contact.notes;
  return (
    <aside id="contact-panel" className="contact-panel" aria-label={t.contactPanel}>
      <header>
        <h2>{t.contactPanel}</h2>
        <button type="button" className="secondary small" onClick={onClose}>
          {t.close}
        </button>
      </header>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="contact-name">{t.contactName}</label>
          <input
            id="contact-name"
            dir="auto"
            value={name}
            maxLength={120}
            placeholder={contact.profileName ?? ''}
            aria-describedby="contact-name-help"
            onChange={(e) => setName(e.target.value)}
          />
          <p id="contact-name-help" className="help small">
            {t.contactNamePlaceholderHint}
          </p>
        </div>
        <dl>
          <dt>{t.contactNumber}</dt>
          <dd>{contact.waId ? formatNumber(contact.waId) : t.noNumber}</dd>
          {/* A patient with a WhatsApp username may share no number: WhatsApp then knows them (and
              we reply to them) by this business-scoped id, which IT can quote to Meta support. */}
          {!contact.waId && contact.businessScopedUserId ? (
            <dd className="small muted" data-testid="contact-bsuid">
              <code>{contact.businessScopedUserId}</code>
            </dd>
          ) : null}
          {contact.profileName ? (
            <>
              <dt>{t.contactProfileName}</dt>
              <dd>{contact.profileName}</dd>
            </>
          ) : null}
        </dl>
        <div className="field">
          <label htmlFor="contact-notes">{t.contactNotes}</label>
          <textarea id="contact-notes" dir="auto" rows={6} maxLength={4000} value={notes} onChange={(e) => setNotes(e.target.value)} />
        </div>
        <button type="submit" className="primary" disabled={!dirty || save.isPending}>
          {t.save}
        </button>
        <span className="small muted" role="status">
          {save.isSuccess && !dirty ? t.saved : ''}
        </span>
        {save.isError ? (
          <p className="form-error" role="alert">
            {errorText(save.error)}
          </p>
        ) : null}
      </form>
      {/* Privacy: consent and the patient's requests; the legal hold and the export are the admin's. */}
      <ConsentPanel contactId={contact.id} />
      <RequestsList contactId={contact.id} />
      {isAdmin ? (
        <>
          <LegalHoldToggle contactId={contact.id} />
          <ExportButton contactId={contact.id} />
        </>
      ) : null}
    </aside>
  );
}
