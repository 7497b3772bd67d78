import { useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ConversationSummary, Role, Whoami } from '../../shared/rpc';
import { AdminScreen } from './admin';
import { LanguagePicker, PolicyProblemsBanner, SettingsScreen, useLanguagePolicy, useSettingsStrings } from './settings';
import { BackupBanner, BackupScreen, useBackupStrings, useRestoreOutcome } from './backup';
import { AuditScreen } from './audit';
import { CalendarBanner } from './booking';
import { ChoosePassword, codeOf, LockScreen, MyAccount, SignIn, TwoFactorRequired, useIdleLock, useSessionWatch } from './auth';
import { ContactPanel } from './contact';
import {
  DataAccessContext,
  keys,
  useAuthStatus,
  useCoreEvents,
  useRecoveryStatus,
  useRelayStatus,
  useWhatsAppStatus,
  useWhoami,
  type InboxFilter,
  type SignedIn,
} from './data/queries';
import { useI18n, type Strings } from './i18n';
import { ErrorState, Sidebar } from './inbox';
import { useRpc } from './rpc';
import { RestoreAccess, SetupWizard } from './setup';
import { askNotificationPermission, useSoundSetting, useUnreadSignals } from './notify';
import { Banners } from './status';
import { ThreadView } from './thread';

/**
 * Which screen the window shows: the restore screen while the core lacks its key, the first
 * admin's account while there is none, sign-in, the user's own new password, then the desk.
 */
export function App(): React.JSX.Element {
  const { t } = useI18n();
  const rpc = useRpc();
  const whoami = useWhoami();
  const status = useAuthStatus();
  const session = useSessionWatch();
  const languages = useLanguagePolicy();
  useCoreEvents();
  const restored = useRestoreOutcome();

  const signOut = useCallback(() => {
    void rpc
      .call('auth.signOut', {})
      .catch(() => undefined)
      .finally(() => session.end(null));
  }, [rpc, session]);

  // A same-computer restore's result, before whatever screen the signed-out window would show.
  if (restored) return restored;
  if ([whoami.error, status.error].some((e) => codeOf(e) === 'RECOVERY_REQUIRED')) return <RestoreAccess />;
  if (whoami.isPending || status.isPending || languages.pending) return <p className="state full">{t.loading}</p>;
  if (whoami.isError || status.isError) {
    const retry = (): void => {
      void whoami.refetch();
      void status.refetch();
    };
    return (
      <div className="state full">
        <ErrorState error={whoami.error ?? status.error} onRetry={retry} />
      </div>
    );
  }
  const me = whoami.data.signedIn ? whoami.data : null;
  if (!me) return status.data.hasAdmin ? <SignIn reason={session.reason} /> : <SetupWizard step="admin" />;
  if (me.state === 'password_change') return <ChoosePassword me={me} onSignOut={signOut} />;
  if (me.mustEnrolTwoFactor && me.state === 'active') return <TwoFactorRequired onSignOut={signOut} />;
  return (
    <DataAccessContext value={me.state === 'active'}>
      <Desk key={me.sessionId} me={me} onSignOut={signOut} onLockedOut={() => session.end('locked_out')} />
    </DataAccessContext>
  );
}

type View = 'inbox' | 'admin' | 'settings' | 'backups' | 'audit';
const VIEW_ROLE: Record<View, Role> = { inbox: 'receptionist', admin: 'admin', settings: 'admin', backups: 'admin', audit: 'auditor' };
const VIEWS = Object.keys(VIEW_ROLE) as View[];
const viewLabel = (t: Strings, view: View): string => (view === 'inbox' ? t.navInbox : view === 'admin' ? t.navAdmin : t.navAudit);

/** Locks the session now: hidden at once on this window, then the core is told. */
function useLock(): () => void {
  const rpc = useRpc();
  const qc = useQueryClient();
  return useCallback(() => {
    qc.setQueryData<Whoami>(keys.whoami, (w) => (w?.signedIn ? { ...w, state: 'locked' } : w));
    void rpc.call('auth.lock', {}).catch(() => undefined);
  }, [rpc, qc]);
}

/**
 * The signed-in window. Locking keeps it mounted (the open conversation and a typed reply survive)
 * but hides and disables all of it under the lock screen.
 */
function Desk({ me, onSignOut, onLockedOut }: { me: SignedIn; onSignOut(): void; onLockedOut(): void }): React.JSX.Element {
  const { t } = useI18n();
  const rpc = useRpc();
  const relay = useRelayStatus();
  const whatsapp = useWhatsAppStatus();
  const isAdmin = me.roles.includes('admin');
  const settingsStrings = useSettingsStrings();
  const backupStrings = useBackupStrings();
  const recovery = useRecoveryStatus(isAdmin);
  const [linkUp, setLinkUp] = useState(true);
  useEffect(() => rpc.onLink(setLinkUp), [rpc]);
  const locked = me.state === 'locked';
  const lock = useLock();
  useIdleLock(me.idleLockMinutes, !locked, lock);

  const views = VIEWS.filter((v) => me.roles.includes(VIEW_ROLE[v]));
  const [chosen, setView] = useState<View | null>(null);
  const view = chosen && views.includes(chosen) ? chosen : (views[0] ?? 'inbox');
  const [accountOpen, setAccountOpen] = useState(false);
  const [fixingWhatsApp, setFixingWhatsApp] = useState(false);
  const [fixingRelay, setFixingRelay] = useState(false);
  const [sound, setSound] = useSoundSetting();
  useUnreadSignals(sound && !locked);

  let content: React.JSX.Element;
  if (relay.isPending) content = <p className="state full">{t.loading}</p>;
  else if (relay.isError) content = <div className="state full"><ErrorState error={relay.error} onRetry={() => void relay.refetch()} /></div>;
  else if (relay.data.state === 'not_paired') content = isAdmin ? <SetupWizard step="relay" /> : <NotSetUp onSignOut={onSignOut} />;
  else if (isAdmin && whatsapp.data && !whatsapp.data.configured && !whatsapp.data.tokenExpired) content = <SetupWizard step="whatsapp" />;
  else if (fixingWhatsApp) content = <SetupWizard step="whatsapp" onDone={() => setFixingWhatsApp(false)} />;
  else if (fixingRelay) content = <SetupWizard step="relay" onDone={() => setFixingRelay(false)} />;
  else if (recovery.data && !(recovery.data.configured && recovery.data.confirmed)) content = <SetupWizard step="recovery" />;
  else {
    content = (
      <div className="app">
        <header className="topbar">
          <h1 className="brand">{t.appName}</h1>
          <nav aria-label={t.navLabel} className="views">
            <ul>
              {views.map((v) => (
                <li key={v}>
                  <button type="button" className="view-tab" aria-current={v === view ? 'page' : undefined} onClick={() => setView(v)}>
                    {v === 'backups' ? backupStrings.nav : v === 'settings' ? settingsStrings.title : viewLabel(t, v)}
                  </button>
                </li>
              ))}
            </ul>
          </nav>
          <p className="small muted hint">{view === 'inbox' ? t.keyboardHint : null}</p>
          <LanguagePicker id="lang" />
          <label className="sound-toggle small">
            <input
              type="checkbox"
              checked={sound}
              onChange={(e) => {
                setSound(e.target.checked);
                askNotificationPermission();
              }}
            />{' '}
            {t.soundOn}
          </label>
          <button type="button" className="account-button" aria-label={t.myAccountFor(me.displayName)} onClick={() => setAccountOpen(true)}>
            {me.displayName}
          </button>
          <button type="button" title={t.lockHint} onClick={lock}>
            {t.lock}
          </button>
        </header>
        <Banners relay={relay.data} whatsapp={whatsapp.data} appLinkUp={linkUp} onFixWhatsApp={() => setFixingWhatsApp(true)} onPairAgain={() => setFixingRelay(true)} />
        {isAdmin && view !== 'backups' ? <BackupBanner onOpen={() => setView('backups')} /> : null}
        {isAdmin && view !== 'settings' ? <CalendarBanner onOpen={() => setView('settings')} /> : null}
        {isAdmin && view !== 'settings' ? <PolicyProblemsBanner onOpen={() => setView('settings')} /> : null}
        {view === 'inbox' ? <Inbox /> : view === 'settings' ? <SettingsScreen onOpenAdmin={() => setView('admin')} onPairAgain={() => setFixingRelay(true)} onFixWhatsApp={() => setFixingWhatsApp(true)} /> : view === 'admin' ? <AdminScreen /> : view === 'backups' ? <BackupScreen /> : <AuditScreen />}
      </div>
    );
  }

  return (
    <>
      <div className={`desk${locked ? ' locked' : ''}`} inert={locked} data-testid="desk">
        {content}
      </div>
      {locked ? <LockScreen me={me} onSwitchUser={onSignOut} onLockedOut={onLockedOut} /> : null}
      {accountOpen && !locked ? <MyAccount me={me} onClose={() => setAccountOpen(false)} onSignOut={onSignOut} /> : null}
    </>
  );
}

function NotSetUp({ onSignOut }: { onSignOut(): void }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <main className="setup">
      <div className="setup-card">
        <h1>{t.setupTitle}</h1>
        <p>{t.notSetUp}</p>
        <div className="setup-actions">
          <button type="button" className="primary" onClick={onSignOut}>
            {t.switchUser}
          </button>
        </div>
      </div>
    </main>
  );
}

/** The receptionist's inbox: the conversation list, the open conversation, the contact panel. */
function Inbox(): React.JSX.Element {
  const [filter, setFilter] = useState<InboxFilter>('all');
  const [query, setQuery] = useState('');
  const [selected, setSelected] = useState<{ id: number; messageId: number | null } | null>(null);
  const [contactOpen, setContactOpen] = useState(false);
  const { t } = useI18n();
  const visible = useRef<ConversationSummary[]>([]);
  const searchRef = useRef<HTMLInputElement>(null);
  const onVisibleChange = useCallback((items: ConversationSummary[]) => {
    visible.current = items;
  }, []);
  const select = useCallback((id: number, messageId?: number) => setSelected({ id, messageId: messageId ?? null }), []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const target = e.target as HTMLElement | null;
      // Keys typed into a dialog (My account) or the lock screen are not the inbox's.
      if (target?.closest?.('dialog, .lock-screen')) return;
      const typing = !!target && (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT' || (target.tagName === 'INPUT' && target.id !== 'search-input'));
      if (e.key === '/' && !typing && document.activeElement !== searchRef.current) {
        e.preventDefault();
        searchRef.current?.focus();
        searchRef.current?.select();
      } else if (e.key === 'Escape') {
        if (document.activeElement === searchRef.current && query) setQuery('');
        else if (contactOpen) setContactOpen(false);
        else setSelected(null);
        (document.activeElement as HTMLElement | null)?.blur?.();
      } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && !typing && !e.altKey && !e.metaKey && !e.ctrlKey) {
        const list = visible.current;
        if (list.length === 0 || query) return;
        e.preventDefault();
        const index = selected ? list.findIndex((c) => c.id === selected.id) : -1;
        const next = e.key === 'ArrowDown' ? Math.min(list.length - 1, index + 1) : Math.max(0, index - 1);
        const conv = list[next];
        if (conv) {
          setSelected({ id: conv.id, messageId: null });
          requestAnimationFrame(() => (document.querySelector(`[data-conversation-id="${conv.id}"]`) as HTMLElement | null)?.focus());
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [query, selected, contactOpen]);

  return (
    <div className={`workspace${contactOpen && selected ? ' with-contact' : ''}`}>
      <Sidebar
        ref={searchRef}
        filter={filter}
        onFilter={setFilter}
        query={query}
        onQuery={setQuery}
        selectedId={selected?.id ?? null}
        onSelect={select}
        onVisibleChange={onVisibleChange}
      />
      {selected ? (
        <ThreadView
          key={selected.id}
          conversationId={selected.id}
          focusMessageId={selected.messageId}
          contactOpen={contactOpen}
          onToggleContact={() => setContactOpen((o) => !o)}
          onLeave={() => setSelected(null)}
        />
      ) : (
        <main className="thread empty" aria-label={t.thread}>
          <p className="state">{t.selectConversation}</p>
        </main>
      )}
      {selected && contactOpen ? <ContactPanel conversationId={selected.id} onClose={() => setContactOpen(false)} /> : null}
    </div>
  );
}
