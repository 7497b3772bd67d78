import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { HealthStatus, SettingsOverview } from '../../../shared/rpc';
import { IntegrationsSettings } from '../booking';
import { useDataAccess, useRelayStatus, useWhatsAppStatus } from '../data/queries';
import { LANGUAGE_NAMES, useI18n, type Language } from '../i18n';
import { useRpc } from '../rpc';
import { PolicyLock } from './PolicyLock';
import { useSettingsStrings, type SettingsStrings } from './strings';
import './settings.css';

export const settingsKeys = { overview: ['settings', 'overview'] as const, health: ['settings', 'health'] as const };

export function useOverview() {
  const rpc = useRpc();
  return useQuery({ queryKey: settingsKeys.overview, queryFn: () => rpc.call('settings.overview', {}), enabled: useDataAccess() });
}
function useHealth() {
  const rpc = useRpc();
  return useQuery({ queryKey: settingsKeys.health, queryFn: () => rpc.call('status.health', {}), refetchInterval: 10_000, enabled: useDataAccess() });
}

/** One setting as a term and its value; locked ones carry the padlock. */
function Row({ label, children, locked = false, testId }: { label: string; children: ReactNode; locked?: boolean; testId?: string }): React.JSX.Element {
  return (
    <div className={locked ? 'setting-row locked' : 'setting-row'} data-testid={testId}>
      <dt>{label}</dt>
      <dd>
        <span className="setting-value">{children}</span>
        {locked ? <PolicyLock /> : null}
      </dd>
    </div>
  );
}

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }): React.JSX.Element {
  return (
    <section className="admin-section settings-section" aria-labelledby={`settings-${id}`} id={`section-${id}`}>
      <h3 id={`settings-${id}`}>{title}</h3>
      {children}
    </section>
  );
}

const bytes = (n: number | null, unknown: string): string => {
  if (n === null) return unknown;
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

function PolicyBanner({ overview }: { overview: SettingsOverview }): React.JSX.Element {
  const s = useSettingsStrings();
  const { problems, found, path } = overview.policy;
  return (
    <>
      {problems.length > 0 ? (
        <div className="banner warn" role="alert" data-testid="policy-problems">
          <p>{s.policyProblems(problems.length)}</p>
          <ul>
            {problems.map((p, i) => (
              <li key={i}>
                <code>{p.key ?? s.wholeFile}</code>: {p.message}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <p className="small muted">{found ? s.policyFrom(path) : s.noPolicy(path || '—')}</p>
    </>
  );
}

function StatusSection({ health }: { health: HealthStatus | undefined }): React.JSX.Element {
  const s = useSettingsStrings();
  const { formatDay, formatTime, errorText } = useI18n();
  const rpc = useRpc();
  const when = (ms: number | null): string => (ms === null ? s.never : `${formatDay(ms)} ${formatTime(ms)}`);
  const exportZip = useMutation({
    mutationFn: () => rpc.call('diagnostics.export', {}),
    onSuccess: ({ filename, zipBase64 }) => {
      const raw = atob(zipBase64);
      const data = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) data[i] = raw.charCodeAt(i);
      const url = URL.createObjectURL(new Blob([data], { type: 'application/zip' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  });
  return (
    <Section id="status" title={s.status}>
      {health ? (
        <dl className="settings-list" data-testid="health">
          <Row label={s.relayLink}>{s.relayState(health.relay.state)}</Row>
          <Row label={s.lastDelivery}>{when(health.lastDeliveryAt)}</Row>
          <Row label={s.backlog}>{health.relay.backlog ? s.backlogValue(health.relay.backlog.queued) : s.unknown}</Row>
          <Row label={s.outbox}>{s.outboxValue(health.outbox.queued + health.outbox.sending, health.outbox.failed)}</Row>
          <Row label={s.tokenState}>{!health.whatsapp.configured ? s.tokenMissing : health.whatsapp.tokenExpired ? s.tokenExpired : s.tokenOk}</Row>
          <Row label={s.lastBackup}>{health.backup ? when(health.backup.lastGoodAt) : s.unknown}</Row>
          <Row label={s.diskFree}>{bytes(health.disk.freeBytes, s.unknown)}</Row>
          <Row label={s.databaseSize}>{bytes(health.databaseBytes, s.unknown)}</Row>
          <Row label={s.keychain}>{health.keychainBackend}</Row>
          <Row label={s.updateState}>{s.updatePhase(health.update.phase)}{health.update.version ? ` (${health.update.version})` : ''}</Row>
        </dl>
      ) : null}
      <div className="form-actions start">
        <button type="button" onClick={() => exportZip.mutate()} disabled={exportZip.isPending} aria-describedby="export-help">
          {exportZip.isPending ? s.exporting : s.exportDiagnostics}
        </button>
        {exportZip.isError ? <span role="alert" className="form-error">{errorText(exportZip.error)}</span> : null}
      </div>
      <p id="export-help" className="help">
        {s.exportHelp}
      </p>
    </Section>
  );
}

function UpdatesSection({ overview }: { overview: SettingsOverview }): React.JSX.Element {
  const s = useSettingsStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const v = overview.values;
  const urlLocked = v['updateUrl']?.locked ?? false;
  const channelLocked = v['updateChannel']?.locked ?? false;
  const [url, setUrl] = useState(overview.updates.url ?? '');
  const [channel, setChannel] = useState(overview.updates.channel);
  const restart = useMutation({ mutationFn: () => rpc.call('updates.restartNow', {}) });
  const save = useMutation({
    mutationFn: () => rpc.call('settings.updateUpdates', { ...(urlLocked ? {} : { url: url.trim() === '' ? null : url.trim() }), ...(channelLocked ? {} : { channel }) }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: settingsKeys.overview }),
  });
  return (
    <Section id="updates" title={s.updates}>
      <form
        className="settings-form"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="update-url">{s.updateServer}</label>
          <input id="update-url" type="url" value={url} onChange={(e) => setUrl(e.target.value)} disabled={urlLocked} aria-describedby="update-url-help" placeholder="https://" />
          {urlLocked ? <PolicyLock /> : null}
          <p id="update-url-help" className="help">
            {s.updateServerHelp}
          </p>
        </div>
        <div className="field">
          <label htmlFor="update-channel">{s.channel}</label>
          <select id="update-channel" value={channel} onChange={(e) => setChannel(e.target.value as typeof channel)} disabled={channelLocked}>
            <option value="stable">{s.channel_stable}</option>
            <option value="early">{s.channel_early}</option>
          </select>
          {channelLocked ? <PolicyLock /> : null}
        </div>
        <dl className="settings-list">
          <Row label={s.allowedVersion} locked={v['allowedVersion']?.locked}>{(v['allowedVersion']?.value as string | null) ?? s.notSet}</Row>
          <Row label={s.deferral} locked={v['updateDeferralDays']?.locked}>{v['updateDeferralDays']?.value == null ? s.notSet : s.days(v['updateDeferralDays'].value as number)}</Row>
          <Row label={s.updateState}>{s.updatePhase(overview.updates.state.phase)}</Row>
        </dl>
        {overview.updates.state.phase === 'ready' ? (
          <p>
            <button type="button" onClick={() => restart.mutate()} disabled={restart.isPending || restart.data?.requested}>
              {s.restartToUpdate}
            </button>{' '}
            <span className="help">{restart.data?.requested ? s.restarting : s.restartHelp}</span>
          </p>
        ) : null}
        <div className="form-actions">
          {save.isSuccess ? <span className="ok-note">{s.saved}</span> : null}
          {save.isError ? <span role="alert" className="form-error">{errorText(save.error)}</span> : null}
          <button type="submit" disabled={save.isPending || (urlLocked && channelLocked)}>
            {s.save}
          </button>
        </div>
      </form>
    </Section>
  );
}

function valueText(s: SettingsStrings, key: string, value: unknown): string {
  if (value === null || value === undefined) return s.notSet;
  if (key === 'idleLockMinutes') return s.minutes(value as number);
  if (key === 'retentionMinimumDays') return s.days(value as number);
  if (key === 'sendGuardMode') return s.sendGuardMode(value as string);
  if (typeof value === 'boolean') return value ? s.yes : s.no;
  return String(value);
}

/**
 * The admin's one place for the installation's settings: status and diagnostics, relay, WhatsApp,
 * security, privacy, backups, updates, language and about. Values the organisation's managed policy
 * set show a padlock and "set by your organisation" and cannot be changed here.
 */
export function SettingsScreen({ onOpenAdmin, onPairAgain, onFixWhatsApp }: { onOpenAdmin?: () => void; onPairAgain?: () => void; onFixWhatsApp?: () => void }): React.JSX.Element {
  const s = useSettingsStrings();
  const { t, errorText, lang } = useI18n();
  const overview = useOverview();
  const health = useHealth();
  const relay = useRelayStatus();
  const whatsapp = useWhatsAppStatus();
  const rpc = useRpc();
  const templates = useMutation({ mutationFn: () => rpc.call('templates.sync', {}) });
  if (overview.isPending) return <p className="state full">{t.loading}</p>;
  if (overview.isError) return <p className="state full error" role="alert">{errorText(overview.error)}</p>;
  const o = overview.data;
  const v = o.values;
  const row = (key: string, label: string) => (
    <Row label={label} locked={v[key]?.locked} testId={`setting-${key}`}>
      {valueText(s, key, v[key]?.value)}
      {(o.policy.notEnforced as string[]).includes(key) ? <span className="help"> ({s.notEnforced})</span> : null}
    </Row>
  );
  const languages = (v['languages']?.value as Language[] | null) ?? null;
  return (
    <main className="admin-screen settings-screen" aria-labelledby="settings-title" data-testid="settings-screen">
      <h2 id="settings-title" className="screen-title">
        {s.title}
      </h2>
      <PolicyBanner overview={o} />
      <nav aria-label={s.sectionsLabel} className="settings-nav">
        <ul>
          {(['status', 'relay', 'whatsapp', 'security', 'privacy', 'backups', 'updates', 'language', 'about'] as const).map((id) => (
            <li key={id}>
              <a href={`#section-${id}`}>{s[id]}</a>
            </li>
          ))}
        </ul>
      </nav>
      <StatusSection health={health.data} />
      <Section id="relay" title={s.relay}>
        <dl className="settings-list" data-testid="settings-relay">
          <Row label={s.relayUrl}>{relay.data?.relayUrl ?? s.notSet}</Row>
          <Row label={s.relayLink}>{relay.data ? s.relayState(relay.data.state) : s.unknown}</Row>
          <Row label={s.backlog}>{relay.data?.backlog ? s.backlogValue(relay.data.backlog.queued) : s.unknown}</Row>
          {row('allowedRelayUrl', s.allowedRelayUrl)}
        </dl>
        {onPairAgain ? (
          <button type="button" onClick={onPairAgain}>
            {s.pairAgain}
          </button>
        ) : null}
      </Section>
      <Section id="whatsapp" title={s.whatsapp}>
        <dl className="settings-list" data-testid="settings-whatsapp">
          <Row label={s.phoneNumbers}>{whatsapp.data?.phoneNumberIds.length ? whatsapp.data.phoneNumberIds.join(', ') : s.notSet}</Row>
          <Row label={s.tokenState}>{health.data ? (!health.data.whatsapp.configured ? s.tokenMissing : health.data.whatsapp.tokenExpired ? s.tokenExpired : s.tokenOk) : s.unknown}</Row>
          <Row label={s.appSecret}>{whatsapp.data ? s.appSecretValue(whatsapp.data.signatureCheck.enabled ? whatsapp.data.signatureCheck.secrets : 0) : s.unknown}</Row>
        </dl>
        <div className="form-actions start">
          {onFixWhatsApp ? (
            <button type="button" onClick={onFixWhatsApp}>
              {s.changeWhatsApp}
            </button>
          ) : null}
          <button type="button" onClick={() => templates.mutate()} disabled={templates.isPending}>
            {s.syncTemplates}
          </button>
          {templates.data ? <span className="ok-note">{s.templatesSynced(templates.data.count)}</span> : null}
          {templates.isError ? <span role="alert" className="form-error">{errorText(templates.error)}</span> : null}
        </div>
      </Section>
      <Section id="security" title={s.security}>
        <dl className="settings-list">
          {row('idleLockMinutes', s.idleLock)}
          {row('twoFactorRequired', s.twoFactor)}
        </dl>
        {onOpenAdmin ? (
          <button type="button" className="link-button" onClick={onOpenAdmin}>
            {s.openAdmin}
          </button>
        ) : null}
      </Section>
      <Section id="privacy" title={s.privacy}>
        <dl className="settings-list">
          {row('retentionMinimumDays', s.retentionMinimum)}
          {row('sendGuardMode', s.sendGuard)}
        </dl>
        <p className="help">{s.privacyHint}</p>
      </Section>
      <Section id="backups" title={s.backups}>
        <dl className="settings-list">{row('backupFolder', s.backupFolder)}</dl>
        <p className="help">{s.backupsHint}</p>
      </Section>
      <UpdatesSection overview={o} />
      <IntegrationsSettings />
      <Section id="language" title={s.language}>
        <dl className="settings-list">
          <Row label={s.language}>{LANGUAGE_NAMES[lang]}</Row>
          <Row label={s.languagesAllowed} locked={v['languages']?.locked} testId="setting-languages">
            {languages ? languages.map((l) => LANGUAGE_NAMES[l] ?? l).join(', ') : s.allLanguages}
          </Row>
        </dl>
      </Section>
      <Section id="about" title={s.about}>
        <dl className="settings-list">
          <Row label={s.version}>{o.about.version}</Row>
          <Row label={s.installationId}>
            <code>{o.about.installationId}</code>
          </Row>
        </dl>
        <details>
          <summary>{s.licences}</summary>
          <div className="table-scroll">
            <table className="admin-table">
              <thead>
                <tr>
                  <th scope="col">{s.package}</th>
                  <th scope="col">{s.version}</th>
                  <th scope="col">{s.licence}</th>
                </tr>
              </thead>
              <tbody>
                {o.about.licences.map((l) => (
                  <tr key={l.name}>
                    <th scope="row">{l.name}</th>
                    <td>{l.version}</td>
                    <td>{l.license}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      </Section>
    </main>
  );
}
