import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { keys, useDataAccess } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';

const SOUND_KEY = 'clinic-inbox.sound';

/** Whether the desk plays a short sound for a new message (a per-computer choice, off by default). */
export function useSoundSetting(): [boolean, (on: boolean) => void] {
  const [on, setOn] = useState(() => localStorage.getItem(SOUND_KEY) === 'on');
  return [on, (next) => {
    localStorage.setItem(SOUND_KEY, next ? 'on' : 'off');
    setOn(next);
  }];
}

/** A red count on the app's icon, drawn on a canvas (the page's CSP allows data: images). */
function drawFavicon(count: number): string {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 32;
  const g = canvas.getContext('2d');
  if (!g) return '';
  g.fillStyle = '#0b7a5c';
  g.beginPath();
  g.arc(16, 16, 15, 0, Math.PI * 2);
  g.fill();
  if (count > 0) {
    g.fillStyle = '#c62828';
    g.beginPath();
    g.arc(22, 10, 10, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = '#fff';
    g.font = 'bold 14px sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(count > 9 ? '9+' : String(count), 22, 11);
  }
  return canvas.toDataURL('image/png');
}

function beep(): void {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.3);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
    osc.onended = () => void ctx.close();
  } catch {
    // no audio device: the title and icon still say it
  }
}

/**
 * The unread count in the window title and on the favicon, a sound if chosen, and a browser
 * notification while the page is hidden (the web harness; the desktop shell notifies by itself).
 * Like the desktop notification, it never carries patient text or names.
 */
export function useUnreadSignals(sound: boolean): void {
  const { t } = useI18n();
  const rpc = useRpc();
  const access = useDataAccess();
  const unread = useQuery({
    queryKey: [...keys.allConversations, 'unreadTotal'],
    queryFn: async () => (await rpc.call('inbox.listConversations', { filter: 'unread', limit: 1 })).unreadTotal,
    enabled: access,
  });
  const count = unread.data ?? 0;
  useEffect(() => {
    document.title = count > 0 ? `(${count}) ${t.appName}` : t.appName;
    let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
    if (!link) {
      link = document.createElement('link');
      link.rel = 'icon';
      document.head.appendChild(link);
    }
    link.href = drawFavicon(count);
  }, [count, t.appName]);
  useEffect(() => () => void (document.title = t.appName), [t.appName]);

  const soundRef = useRef(sound);
  soundRef.current = sound;
  const strings = useRef(t);
  strings.current = t;
  useEffect(
    () =>
      rpc.on((event) => {
        if (event !== 'message.received') return;
    if (soundRef.current) beep();
    const isElectron = 'clinicInbox' in window;
    if (!isElectron && document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      new Notification(strings.current.notificationTitle, { body: strings.current.notificationBody, tag: 'clinic-inbox-new' });
    }
      }),
    [rpc],
  );
}

/** Asks for notification permission once, from a click (browsers refuse it otherwise). */
export function askNotificationPermission(): void {
  if ('Notification' in window && Notification.permission === 'default') void Notification.requestPermission();
}
