import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { keys, useWhatsAppStatus } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { CreateAdminStep } from './CreateAdminStep';
import { FormFooter } from './FormFooter';
import { RecoveryKeyStep } from './RecoveryKeyStep';

type Step = 'admin' | 'relay' | 'whatsapp' | 'recovery';

/** First-run setup for the IT admin: their own account, pair with the relay, give the WhatsApp account, keep a recovery key. */
export function SetupWizard({ step, onDone }: { step: Step; onDone?(): void }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <main className="setup" data-testid="setup-wizard">
      <div className="setup-card">
        <h1>{t.setupTitle}</h1>
        <p className="muted">{t.setupIntro}</p>
        <ol className="steps" aria-label={t.setupTitle}>
          <li aria-current={step === 'admin' ? 'step' : undefined}>{t.setupStepAdmin}</li>
          <li aria-current={step === 'relay' ? 'step' : undefined}>{t.setupStepRelay}</li>
          <li aria-current={step === 'whatsapp' ? 'step' : undefined}>{t.setupStepWhatsApp}</li>
          <li aria-current={step === 'recovery' ? 'step' : undefined}>{t.setupStepRecovery}</li>
        </ol>
        {step === 'admin' ? (
          <CreateAdminStep />
        ) : step === 'relay' ? (
          <RelayStep onDone={onDone} />
        ) : step === 'whatsapp' ? (
          <WhatsAppStep onDone={onDone} />
        ) : (
          <RecoveryKeyStep />
        )}
      </div>
    </main>
  );
}

function RelayStep({ onDone }: { onDone?(): void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [relayUrl, setRelayUrl] = useState('');
  const [code, setCode] = useState('');
  const pair = useMutation({
    mutationFn: () => rpc.call('setup.pair', { relayUrl: relayUrl.trim(), code: code.trim().toUpperCase() }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: keys.relay });
      void qc.invalidateQueries({ queryKey: keys.whatsapp });
      onDone?.();
    },
  });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        pair.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="relay-url">{t.relayAddress}</label>
        <input id="relay-url" type="url" required value={relayUrl} onChange={(e) => setRelayUrl(e.target.value)} aria-describedby="relay-url-help" autoComplete="off" />
        <p id="relay-url-help" className="help">
          {t.relayAddressHelp}
        </p>
      </div>
      <div className="field">
        <label htmlFor="enrol-code">{t.enrolmentCode}</label>
        <input id="enrol-code" required value={code} onChange={(e) => setCode(e.target.value)} aria-describedby="enrol-code-help" autoComplete="off" spellCheck={false} className="mono" />
        <p id="enrol-code-help" className="help">
          {t.enrolmentCodeHelp}
        </p>
      </div>
      <FormFooter error={pair.isError ? errorText(pair.error) : null} onCancel={onDone} pending={pair.isPending} label={pair.isPending ? t.pairing : t.pair} />
    </form>
  );
}

function WhatsAppStep({ onDone }: { onDone?(): void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [wabaId, setWabaId] = useState('');
  const [token, setToken] = useState('');
  const [graphBaseUrl, setGraphBaseUrl] = useState('');
  const [appSecret, setAppSecret] = useState('');
  const signature = useWhatsAppStatus().data?.signatureCheck;
  // Null until the admin touches it: then it shows what is set, and saving leaves it as it is.
  const [requireChoice, setRequireChoice] = useState<boolean | null>(null);
  const requireSignature = requireChoice ?? signature?.required ?? false;
  // Nothing to require without a secret to check with (the core refuses it too).
  const canRequire = requireSignature || signature?.enabled === true || appSecret.trim() !== '';
  const save = useMutation({
    mutationFn: () =>
      rpc.call('setup.whatsapp', {
        wabaId: wabaId.trim(),
        accessToken: token.trim(),
        ...(graphBaseUrl.trim() ? { graphBaseUrl: graphBaseUrl.trim() } : {}),
        // Empty keeps the secret already set: renewing the token must not turn the check off.
        ...(appSecret.trim() ? { appSecret: appSecret.trim() } : {}),
        ...(requireChoice !== null ? { requireMetaSignature: requireChoice } : {}),
      }),
    onSuccess: (status) => {
      qc.setQueryData(keys.whatsapp, status);
      setToken('');
      setAppSecret('');
      setRequireChoice(null);
      onDone?.();
    },
  });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="waba-id">{t.wabaId}</label>
        <input id="waba-id" required inputMode="numeric" pattern="\d{1,32}" value={wabaId} onChange={(e) => setWabaId(e.target.value)} aria-describedby="waba-help" autoComplete="off" />
        <p id="waba-help" className="help">
          {t.wabaIdHelp}
        </p>
      </div>
      <div className="field">
        <label htmlFor="access-token">{t.accessToken}</label>
        <input id="access-token" type="password" required minLength={20} value={token} onChange={(e) => setToken(e.target.value)} aria-describedby="token-help" autoComplete="off" />
        <p id="token-help" className="help">
          {t.accessTokenHelp}
        </p>
      </div>
      <div className="field">
        <label htmlFor="app-secret">{t.appSecret}</label>
        <input id="app-secret" type="password" value={appSecret} onChange={(e) => setAppSecret(e.target.value)} aria-describedby="app-secret-help" autoComplete="off" spellCheck={false} className="mono" />
        <p id="app-secret-help" className="help">
          {t.appSecretHelp}
        </p>
        {signature?.enabled ? (
          <p className="help" data-testid="signature-status">
            {t.signatureStatus(signature.verified, signature.relayVouched, signature.failed)}
          </p>
        ) : null}
      </div>
      <div className="field checkbox">
        <input
          id="require-meta-signature"
          type="checkbox"
          checked={requireSignature}
          disabled={!canRequire}
          onChange={(e) => setRequireChoice(e.target.checked)}
          aria-describedby="require-meta-signature-help"
        />
        <div>
          <label htmlFor="require-meta-signature">{t.requireMetaSignature}</label>
          <p id="require-meta-signature-help" className="help">
            {t.requireMetaSignatureHelp}
          </p>
        </div>
      </div>
      <details>
        <summary>{t.advanced}</summary>
        <div className="field">
          <label htmlFor="graph-url">{t.graphBaseUrl}</label>
          <input id="graph-url" type="url" value={graphBaseUrl} onChange={(e) => setGraphBaseUrl(e.target.value)} autoComplete="off" />
        </div>
      </details>
      <FormFooter
        error={save.isError ? errorText(save.error) : null}
        onCancel={onDone}
        pending={save.isPending}
        label={save.isPending ? t.savingWhatsApp : onDone ? t.save : t.saveWhatsApp}
      />
    </form>
  );
}
