import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { PASSWORD_MIN_WITH_2FA, PASSWORD_MIN_WITHOUT_2FA, ROLES, type Role, type User } from '../../../shared/rpc';
import { rejectionOf } from '../auth';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { AdminTable } from './AdminTable';
import { QueryState } from './QueryState';
import { ConfirmDialog, Dialog } from './Dialog';
import { adminKeys, useUsers } from './queries';
import { useAdminStrings, type AdminStrings } from './strings';
import { useDateTime } from './useDateTime';

const roleLabel = (s: AdminStrings, role: Role): string => s[`role_${role}`];

/** Why the core refused the password (the rule, in the reader's language), else our text for the code. */
function useFieldError() {
  const { t, errorText } = useI18n();
  return (err: unknown): string => rejectionOf(t, err) ?? errorText(err);
}

function RoleChecks({ legend, value, onChange }: { legend: string; value: Role[]; onChange(roles: Role[]): void }): React.JSX.Element {
  const s = useAdminStrings();
  const id = useId();
  return (
    <fieldset className="role-checks">
      <legend>{legend}</legend>
      {ROLES.map((role) => (
        <span key={role} className="check">
          <input
            id={`${id}-${role}`}
            type="checkbox"
            checked={value.includes(role)}
            onChange={(e) => onChange(e.target.checked ? [...value, role] : value.filter((r) => r !== role))}
          />
          <label htmlFor={`${id}-${role}`}>{roleLabel(s, role)}</label>
        </span>
      ))}
    </fieldset>
  );
}

function AddUserForm(): React.JSX.Element {
  const s = useAdminStrings();
  const { errorText } = useI18n();
  const fieldError = useFieldError();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [displayName, setDisplayName] = useState('');
  const [username, setUsername] = useState('');
  const [roles, setRoles] = useState<Role[]>(['receptionist']);
  const [password, setPassword] = useState('');
  const [added, setAdded] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => rpc.call('users.create', { displayName, username, roles, password }),
    onSuccess: (user) => {
      setAdded(user.displayName);
      setDisplayName('');
      setUsername('');
      setRoles(['receptionist']);
      setPassword('');
      void qc.invalidateQueries({ queryKey: adminKeys.users });
    },
  });
  const passwordRejected = (create.error as { code?: string } | null)?.code === 'PASSWORD_REJECTED';
  const canSubmit = displayName.trim() !== '' && username.trim() !== '' && roles.length > 0 && password !== '' && !create.isPending;

  return (
    <form
      className="add-user"
      aria-labelledby="add-user-title"
      onSubmit={(e) => {
        e.preventDefault();
        setAdded(null);
        if (canSubmit) create.mutate();
      }}
    >
      <h4 id="add-user-title">{s.addUser}</h4>
      <div className="form-grid">
        <div className="field">
          <label htmlFor="new-user-name">{s.name}</label>
          <input id="new-user-name" value={displayName} autoComplete="off" onChange={(e) => setDisplayName(e.target.value)} required />
        </div>
        <div className="field">
          <label htmlFor="new-user-username">{s.username}</label>
          <input id="new-user-username" value={username} autoComplete="off" spellCheck={false} onChange={(e) => setUsername(e.target.value)} required />
        </div>
      </div>
      <RoleChecks legend={s.roles} value={roles} onChange={setRoles} />
      {roles.length === 0 ? <p className="help">{s.pickRole}</p> : null}
      <div className="field">
        <label htmlFor="new-user-password">{s.oneTimePassword}</label>
        <input
          id="new-user-password"
          type="text"
          className="mono"
          value={password}
          autoComplete="off"
          spellCheck={false}
          aria-describedby="new-user-password-help new-user-password-error"
          aria-invalid={passwordRejected || undefined}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
        <p id="new-user-password-help" className="help">
          {s.oneTimePasswordHelp(PASSWORD_MIN_WITHOUT_2FA, PASSWORD_MIN_WITH_2FA)}
        </p>
        <p id="new-user-password-error" className="form-error" role="alert">
          {passwordRejected ? fieldError(create.error) : ''}
        </p>
      </div>
      {create.isError && !passwordRejected ? (
        <p className="form-error" role="alert">
          {errorText(create.error)}
        </p>
      ) : null}
      {added ? (
        <p className="ok-note" role="status">
          {s.userAdded(added)}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={!canSubmit}>
          {create.isPending ? s.creating : s.createUser}
        </button>
      </div>
    </form>
  );
}

function EditUserDialog({ user, onClose }: { user: User; onClose(): void }): React.JSX.Element {
  const s = useAdminStrings();
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [displayName, setDisplayName] = useState(user.displayName);
  const [roles, setRoles] = useState<Role[]>(user.roles);
  const save = useMutation({
    mutationFn: () => rpc.call('users.update', { userId: user.id, displayName, roles }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: adminKeys.users });
      onClose();
    },
  });
  return (
    <Dialog title={s.editUser(user.displayName)} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (roles.length > 0) save.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="edit-user-name">{s.name}</label>
          <input id="edit-user-name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} required />
        </div>
        <RoleChecks legend={s.roles} value={roles} onChange={setRoles} />
        {roles.length === 0 ? <p className="help">{s.pickRole}</p> : null}
        {save.isError ? (
          <p className="form-error" role="alert">
            {errorText(save.error)}
          </p>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="secondary" onClick={onClose}>
            {t.cancel}
          </button>
          <button type="submit" className="primary" disabled={save.isPending || roles.length === 0 || displayName.trim() === ''}>
            {t.save}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function OneTimePasswordDialog({ user, password, onClose }: { user: User; password: string; onClose(): void }): React.JSX.Element {
  const s = useAdminStrings();
  const [copied, setCopied] = useState(false);
  return (
    <Dialog title={s.newOneTimePassword(user.displayName)} onClose={onClose}>
      <output className="one-time-password mono" data-testid="one-time-password">
        {password}
      </output>
      <p className="help">{s.shownOnce}</p>
      <div className="dialog-actions">
        <button
          type="button"
          className="secondary"
          onClick={() => {
            void navigator.clipboard?.writeText(password).then(() => setCopied(true));
          }}
        >
          {copied ? s.copied : s.copy}
        </button>
        <button type="button" className="primary" onClick={onClose}>
          {s.done}
        </button>
      </div>
    </Dialog>
  );
}

type Pending = { kind: 'resetPassword' | 'resetTwoFactor' | 'disable'; user: User };

function useUserActions() {
  const rpc = useRpc();
  const qc = useQueryClient();
  const settled = { onSettled: () => qc.invalidateQueries({ queryKey: adminKeys.users }) };
  return {
    run: useMutation({
      mutationFn: async ({ kind, user }: Pending): Promise<string | null> => {
        if (kind === 'resetPassword') return (await rpc.call('users.resetPassword', { userId: user.id })).oneTimePassword;
        if (kind === 'resetTwoFactor') await rpc.call('users.resetTwoFactor', { userId: user.id });
        else await rpc.call('users.update', { userId: user.id, disabled: true });
        return null;
      },
      ...settled,
      onSuccess: () => qc.invalidateQueries({ queryKey: adminKeys.sessions }),
    }),
    enable: useMutation({ mutationFn: (user: User) => rpc.call('users.update', { userId: user.id, disabled: false }), ...settled }),
    unlock: useMutation({ mutationFn: (user: User) => rpc.call('users.unlock', { userId: user.id }), ...settled }),
  };
}

function statusText(s: AdminStrings, user: User, now: number, when: (ms: number) => string): string[] {
  const out: string[] = [user.disabled ? s.disabled : s.active];
  if (user.lockedUntil !== null && user.lockedUntil > now) out.push(s.lockedUntil(when(user.lockedUntil)));
  if (user.mustChangePassword) out.push(s.mustChangePassword);
  return out;
}

export function UsersSection(): React.JSX.Element {
  const s = useAdminStrings();
  const { t, errorText } = useI18n();
  const when = useDateTime();
  const users = useUsers();
  const actions = useUserActions();
  const [editing, setEditing] = useState<User | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const [revealed, setRevealed] = useState<{ user: User; password: string } | null>(null);
  const now = Date.now();

  const confirmText = (p: Pending): string =>
    p.kind === 'resetPassword' ? s.confirmResetPassword(p.user.displayName) : p.kind === 'resetTwoFactor' ? s.confirmResetTwoFactor(p.user.displayName) : s.confirmDisable(p.user.displayName);
  const actionLabel = (p: Pending): string => (p.kind === 'resetPassword' ? s.resetPassword : p.kind === 'resetTwoFactor' ? s.resetTwoFactor : s.disable);
  const rowError = actions.enable.error ?? actions.unlock.error;

  return (
    <section className="admin-section" aria-labelledby="users-title">
      <h3 id="users-title">{s.users}</h3>
      <QueryState query={users} />
      {users.data ? (
        <AdminTable testId="users-table" columns={[s.name, s.username, s.roles, s.twoFactor, s.status, s.lastSignIn, s.actions]}>
          {users.data.map((u) => {
            const locked = u.lockedUntil !== null && u.lockedUntil > now;
            return (
              <tr key={u.id} data-username={u.username} className={u.disabled ? 'disabled' : undefined}>
                <th scope="row">{u.displayName}</th>
                <td className="mono">{u.username}</td>
                <td>{u.roles.map((r) => roleLabel(s, r)).join(', ')}</td>
                <td>{u.twoFactor ? s.on : s.off}</td>
                <td>
                  {statusText(s, u, now, when.local).map((line) => (
                    <span key={line} className={`status-line${line === s.active ? '' : ' flagged'}`}>
                      {line}
                    </span>
                  ))}
                </td>
                <td>{u.lastSignInAt === null ? s.never : <time title={when.utc(u.lastSignInAt)}>{when.local(u.lastSignInAt)}</time>}</td>
                <td>
                  <div className="row-actions">
                    <button type="button" className="small" aria-label={s.editUser(u.displayName)} onClick={() => setEditing(u)}>
                      {s.edit}
                    </button>
                    <button type="button" className="small" onClick={() => setPending({ kind: 'resetPassword', user: u })}>
                      {s.resetPassword}
                    </button>
                    {u.twoFactor ? (
                      <button type="button" className="small" onClick={() => setPending({ kind: 'resetTwoFactor', user: u })}>
                        {s.resetTwoFactor}
                      </button>
                    ) : null}
                    {locked ? (
                      <button type="button" className="small" disabled={actions.unlock.isPending} onClick={() => actions.unlock.mutate(u)}>
                        {s.unlock}
                      </button>
                    ) : null}
                    {u.disabled ? (
                      <button type="button" className="small" disabled={actions.enable.isPending} onClick={() => actions.enable.mutate(u)}>
                        {s.enable}
                      </button>
                    ) : (
                      <button type="button" className="small danger" onClick={() => setPending({ kind: 'disable', user: u })}>
                        {s.disable}
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            );
          })}
        </AdminTable>
      ) : null}
      {rowError ? (
        <p className="form-error" role="alert">
          {errorText(rowError)}
        </p>
      ) : null}
      <AddUserForm />
      {editing ? <EditUserDialog user={editing} onClose={() => setEditing(null)} /> : null}
      {pending ? (
        <ConfirmDialog
          title={actionLabel(pending)}
          message={confirmText(pending)}
          confirmLabel={actionLabel(pending)}
          cancelLabel={t.cancel}
          busy={actions.run.isPending}
          error={actions.run.isError ? errorText(actions.run.error) : null}
          onCancel={() => {
            actions.run.reset();
            setPending(null);
          }}
          onConfirm={() =>
            actions.run.mutate(pending, {
              onSuccess: (password) => {
                setPending(null);
                if (password) setRevealed({ user: pending.user, password });
              },
            })
          }
        />
      ) : null}
      {revealed ? <OneTimePasswordDialog user={revealed.user} password={revealed.password} onClose={() => setRevealed(null)} /> : null}
    </section>
  );
}
