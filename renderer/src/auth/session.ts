import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { RpcEventPayload, Whoami } from '../../../shared/rpc';
import { keys } from '../data/queries';
import { useRpc } from '../rpc';
import { codeOf } from './errors';

/** Why the window shows the sign-in screen again: the core's reason, or what this window saw. */
export type EndReason = RpcEventPayload<'session.ended'>['reason'] | 'locked_out' | 'link';

/** Refusals that mean the window's idea of its session is out of date. */
const SESSION_CODES = new Set(['UNAUTHENTICATED', 'SESSION_LOCKED', 'PASSWORD_CHANGE_REQUIRED']);

/** Mutations that answer for themselves (a wrong password is not a lost session). */
export const AUTH_META = { auth: true } as const;

/** Everything but who is signed in and the sign-in screen's own status: the clinic's data. */
function dropClinicData(qc: QueryClient): void {
  qc.removeQueries({ predicate: (q) => q.queryKey[0] !== keys.whoami[0] && q.queryKey[0] !== keys.authStatus[0] });
}

/** A new session starts from an empty cache: nothing another user loaded, no refusals from before. */
export function startSession(qc: QueryClient, whoami: Whoami): void {
  dropClinicData(qc);
  qc.setQueryData(keys.whoami, whoami);
}

/**
 * Keeps the window's session in step with the core: `session.changed` (locked or unlocked in
 * another window) refetches whoami; `session.ended` (revoked, expired, password reset, disabled)
 * drops the clinic's data from memory and shows sign-in with the reason; any call refused as
 * signed out or locked refetches whoami, so the window lands on the right screen.
 */
export function useSessionWatch(): { reason: EndReason | null; end(reason: EndReason | null): void } {
  const rpc = useRpc();
  const qc = useQueryClient();
  const [reason, setReason] = useState<EndReason | null>(null);
  const linkDropped = useRef(false);

  const end = useCallback(
    (why: EndReason | null) => {
      setReason(why);
      qc.setQueryData<Whoami>(keys.whoami, { signedIn: false });
      dropClinicData(qc);
      void qc.invalidateQueries({ queryKey: keys.authStatus });
    },
    [qc],
  );

  useEffect(() => {
    const refresh = (): void => void qc.invalidateQueries({ queryKey: keys.whoami });
    const offEvents = rpc.on((event, payload) => {
      if (event === 'session.changed') refresh();
      else if (event === 'session.ended') end((payload as RpcEventPayload<'session.ended'>).reason);
    });
    const offLink = rpc.onLink((up) => {
      if (!up && qc.getQueryData<Whoami>(keys.whoami)?.signedIn) linkDropped.current = true;
    });
    const refused = (err: unknown): void => {
      if (SESSION_CODES.has(codeOf(err) ?? '')) refresh();
    };
    const offQueries = qc.getQueryCache().subscribe((e) => {
      if (e.type === 'updated' && e.action.type === 'error' && e.query.queryKey[0] !== keys.whoami[0]) refused(e.action.error);
    });
    const offMutations = qc.getMutationCache().subscribe((e) => {
      if (e.type === 'updated' && e.action.type === 'error' && !e.mutation.meta?.['auth']) refused(e.action.error);
    });
    // A window that was signed in and finds itself signed out without being told (the harness
    // socket dropped, which ends its connection) says so and forgets what it had loaded.
    const offWhoami = qc.getQueryCache().subscribe((e) => {
      if (e.type !== 'updated' || e.query.queryKey[0] !== keys.whoami[0] || e.action.type !== 'success') return;
      const now = e.query.state.data as Whoami | undefined;
      if (now && !now.signedIn && linkDropped.current) {
        linkDropped.current = false;
        setReason('link');
        dropClinicData(qc);
      }
    });
    return () => {
      offEvents();
      offLink();
      offQueries();
      offMutations();
      offWhoami();
    };
  }, [rpc, qc, end]);

  return { reason, end };
}
