import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Fragment, useState } from 'react';
import { keys, useWhatsAppStatus } from '../data/queries';
import { useI18n } from '../i18n';
import { LanguagePicker } from '../settings';
import { codeOf } from '../auth';
import { useRpc } from '../rpc';
import { AdminStepOrRestore } from '../backup';
import { CreateAdminStep } from './CreateAdminStep';
import { FormFooter } from './FormFooter';
import { HelpedField } from './HelpedField';
import { RecoveryKeyStep } from './RecoveryKeyStep';

type Step = 'admin' | 'relay' | 'whatsapp' | 'recovery';

/** The wizard's language choice, on every step: the policy's languages only. */
function LanguageSwitch(): React.JSX.Element {
  return (
    <div className="setup-language">
      <LanguagePicker id="setup-lang" visibleLabel />
    </div>
  );
}

/** What the relay address field says before anything is sent: https is required. */
export function relayUrlProblem(t: { relayHttpsRequired: string; relayAddressInvalid: string }, value: string): string | null {
  const v = value.trim();
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return t.relayAddressInvalid;
  }
  const local = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol === 'http:' && !local) return t.relayHttpsRequired;
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return t.relayHttpsRequired;
  return null;
}

/** First-run setup for the IT admin: their own account, pair with the relay, give the WhatsApp account, keep a recovery key. */
export function SetupWizard({ step, onDone }: { step: Step; onDone?(): void }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <main className="setup" data-testid="setup-wizard">
      <div className="setup-card">
        <LanguageSwitch />
        <h1>{t.setupTitle}</h1>
        <p className="muted">{t.setupIntro}</p>
        <ol className="steps" aria-label={t.setupTitle}>
          <li aria-current={step === 'admin' ? 'step' : undefined}>{t.setupStepAdmin}</li>
          <li aria-current={step === 'relay' ? 'step' : undefined}>{t.setupStepRelay}</li>
          <li aria-current={step === 'whatsapp' ? 'step' : undefined}>{t.setupStepWhatsApp}</li>
          <li aria-current={step === 'recovery' ? 'step' : undefined}>{t.setupStepRecovery}</li>
        </ol>
        {step === 'admin' ? (
          <AdminStepOrRestore>
            <CreateAdminStep />
          </AdminStepOrRestore>
        ) : step === 'relay' ? (
          <RelayStep onDone={onDone} />
        ) : step === 'whatsapp' ? (
          <WhatsAppStep onDone={onDone} />
        ) : (
          <>
            <ConnectedSummary />
            <RecoveryKeyStep />
          </>
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
  const [urlError, setUrlError] = useState<string | null>(null);
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
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const problem = relayUrlProblem(t, relayUrl);
        setUrlError(problem);
        if (problem) return void document.getElementById('relay-url')?.focus();
        pair.mutate();
      }}
    >
      <HelpedField id="relay-url" label={t.relayAddress} help={t.relayAddressHelp} error={urlError} type="url" required value={relayUrl} onChange={(e) => setRelayUrl(e.target.value)} />
      <HelpedField id="enrol-code" label={t.enrolmentCode} help={t.enrolmentCodeHelp} required value={code} onChange={(e) => setCode(e.target.value)} spellCheck={false} className="mono" />
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
      if (!onDone) qc.setQueryData(keys.whatsapp, status);
      setToken('');
      setAppSecret('');
      setRequireChoice(null);
    },
  });
  if (save.isSuccess && onDone) {
    return (
      <ConnectedSummary
        onContinue={() => {
          qc.setQueryData(keys.whatsapp, save.data);
          onDone?.();
        }}
      />
    );
  }
  const code = save.isError ? codeOf(save.error) : null;
  const wabaError = code === 'WHATSAPP_ACCOUNT_UNKNOWN' ? t.err_WHATSAPP_ACCOUNT_UNKNOWN : null;
  const tokenError =
    code === 'WHATSAPP_TOKEN_INVALID'
      ? t.err_WHATSAPP_TOKEN_INVALID
      : code === 'WHATSAPP_TOKEN_NOT_FOR_ACCOUNT'
        ? t.err_WHATSAPP_TOKEN_NOT_FOR_ACCOUNT
        : code === 'WHATSAPP_TOKEN_EXPIRED'
          ? t.err_WHATSAPP_TOKEN_EXPIRED_SETUP
          : null;
  const formError = save.isError && !wabaError && !tokenError ? errorText(save.error) : null;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <HelpedField id="waba-id" label={t.wabaId} help={t.wabaIdHelp} error={wabaError} required inputMode="numeric" pattern="\d{1,32}" value={wabaId} onChange={(e) => setWabaId(e.target.value)} />
      <HelpedField id="access-token" label={t.accessToken} help={t.accessTokenHelp} error={tokenError} type="password" required minLength={20} value={token} onChange={(e) => setToken(e.target.value)} />
      <HelpedField id="app-secret" label={t.appSecret} help={t.appSecretHelp} type="password" value={appSecret} onChange={(e) => setAppSecret(e.target.value)} spellCheck={false} className="mono">
        {signature?.enabled ? (
          <p className="help" data-testid="signature-status">
            {t.signatureStatus(signature.verified, signature.relayVouched, signature.failed)}
          </p>
        ) : null}
      </HelpedField>
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
        error={formError}
        onCancel={onDone}
        pending={save.isPending}
        label={save.isPending ? t.savingWhatsApp : onDone ? t.save : t.saveWhatsApp}
      />
    </form>
  );
}

/** After the WhatsApp step: what this computer is now connected to, as the relay and Meta say. */
export function ConnectedSummary({ onContinue }: { onContinue?: () => void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const account = useQuery({ queryKey: ['whatsapp.account'], queryFn: () => rpc.call('whatsapp.account', {}) });
  return (
    <section className="connected-summary" aria-labelledby="connected-title" data-testid="connected-summary">
      <h2 id="connected-title">{t.connectedTitle}</h2>
      {account.isPending ? <p className="state small">{t.loading}</p> : null}
      {account.isError ? <p className="form-error">{errorText(account.error)}</p> : null}
      {account.data ? (
        <dl>
          <dt>{t.connectedClinic}</dt>
          <dd>{account.data.tenantId ?? '—'}</dd>
          <dt>{t.connectedRelay}</dt>
          <dd>{account.data.relayUrl ?? '—'}</dd>
          <dt>{t.connectedAccount}</dt>
          <dd>{account.data.wabaId ?? '—'}</dd>
          {account.data.phoneNumbers.map((n) => (
            <Fragment key={n.id}>
              <dt>{t.connectedNumber}</dt>
              <dd>{n.displayPhoneNumber ?? n.id}</dd>
              <dt>{t.connectedName}</dt>
              <dd>{n.verifiedName ?? '—'}</dd>
              <dt>{t.connectedQuality}</dt>
              <dd data-quality={n.qualityRating ?? 'UNKNOWN'}>{t.quality(n.qualityRating ?? 'UNKNOWN')}</dd>
            </Fragment>
          ))}
        </dl>
      ) : null}
      {onContinue ? (
        <div className="setup-actions">
          <button type="button" className="primary" onClick={onContinue}>
            {t.continueSetup}
          </button>
        </div>
      ) : null}
    </section>
  );
}
