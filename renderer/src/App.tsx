import { useCallback, useEffect, useRef, useState } from 'react';
import type { ConversationSummary } from '../../shared/rpc';
import { ContactPanel } from './contact';
import { useCoreEvents, useRecoveryStatus, useRelayStatus, useWhatsAppStatus, useWhoami, type InboxFilter } from './data/queries';
import { LANGUAGE_NAMES, useI18n, type Language } from './i18n';
import { ErrorState, Sidebar } from './inbox';
import { useRpc } from './rpc';
import { RestoreAccess, SetupWizard } from './setup';
import { Banners } from './status';
import { ThreadView } from './thread';

export function App(): React.JSX.Element {
  const { t, lang, setLang } = useI18n();
  const rpc = useRpc();
  const relay = useRelayStatus();
  const whatsapp = useWhatsAppStatus();
  const isAdmin = useWhoami().data?.role === 'admin';
  const recovery = useRecoveryStatus(isAdmin);
  const [linkUp, setLinkUp] = useState(true);
  useEffect(() => rpc.onLink(setLinkUp), [rpc]);
  useCoreEvents();

  const [filter, setFilter] = useState<InboxFilter>('all');
  const [query, setQuery] = useState('');
  const [selected, setSelected] = useState<{ id: number; messageId: number | null } | null>(null);
  const [contactOpen, setContactOpen] = useState(false);
  const [fixingWhatsApp, setFixingWhatsApp] = useState(false);
  const [fixingRelay, setFixingRelay] = useState(false);
  const visible = useRef<ConversationSummary[]>([]);
  const searchRef = useRef<HTMLInputElement>(null);
  const onVisibleChange = useCallback((items: ConversationSummary[]) => {
    visible.current = items;
  }, []);
  const select = useCallback((id: number, messageId?: number) => setSelected({ id, messageId: messageId ?? null }), []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const target = e.target as HTMLElement | null;
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

  if (relay.isPending) return <p className="state full">{t.loading}</p>;
  if (relay.isError && (relay.error as { code?: string }).code === 'RECOVERY_REQUIRED') return <RestoreAccess />;
  if (relay.isError) return <div className="state full"><ErrorState error={relay.error} onRetry={() => void relay.refetch()} /></div>;
  if (relay.data.state === 'not_paired') return <SetupWizard step="relay" />;
  if (whatsapp.data && !whatsapp.data.configured && !whatsapp.data.tokenExpired) return <SetupWizard step="whatsapp" />;
  if (fixingWhatsApp) return <SetupWizard step="whatsapp" onDone={() => setFixingWhatsApp(false)} />;
  if (fixingRelay) return <SetupWizard step="relay" onDone={() => setFixingRelay(false)} />;
  if (recovery.data && !recovery.data.configured) return <SetupWizard step="recovery" />;

  return (
    <div className="app">
      <header className="topbar">
        <h1 className="brand">{t.appName}</h1>
        <p className="small muted hint">{t.keyboardHint}</p>
        <label htmlFor="lang" className="visually-hidden">
          {t.language}
        </label>
        <select id="lang" value={lang} onChange={(e) => setLang(e.target.value as Language)}>
          {Object.entries(LANGUAGE_NAMES).map(([code, name]) => (
            <option key={code} value={code}>
              {name}
            </option>
          ))}
        </select>
      </header>
      <Banners relay={relay.data} whatsapp={whatsapp.data} appLinkUp={linkUp} onFixWhatsApp={() => setFixingWhatsApp(true)} onPairAgain={() => setFixingRelay(true)} />
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
          />
        ) : (
          <main className="thread empty" aria-label={t.thread}>
            <p className="state">{t.selectConversation}</p>
          </main>
        )}
        {selected && contactOpen ? <ContactPanel conversationId={selected.id} onClose={() => setContactOpen(false)} /> : null}
      </div>
    </div>
  );
}
