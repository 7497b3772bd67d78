import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { SecuritySettings } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { QueryState } from './QueryState';
import { adminKeys, useSecuritySettings } from './queries';
import { useAdminStrings } from './strings';

const DEFAULT_HOURS = { days: [1, 2, 3, 4, 5], opens: '08:00', closes: '18:00' };
/** Monday first, as the clinics we serve read a week. */
const WEEK = [1, 2, 3, 4, 5, 6, 0];

function SettingsForm({ initial }: { initial: SecuritySettings }): React.JSX.Element {
  const s = useAdminStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [form, setForm] = useState(initial);
  const [hoursOn, setHoursOn] = useState(initial.openingHours !== null);
  const hours = form.openingHours ?? DEFAULT_HOURS;
  const set = (patch: Partial<SecuritySettings>): void => setForm((f) => ({ ...f, ...patch }));
  const setHours = (patch: Partial<typeof hours>): void => set({ openingHours: { ...hours, ...patch } });
  const save = useMutation({
    mutationFn: () => rpc.call('security.updateSettings', { ...form, openingHours: hoursOn ? hours : null }),
    onSuccess: (saved) => {
      qc.setQueryData(adminKeys.settings, saved);
      setForm(saved);
    },
  });
  const number = (value: string): number => (value === '' ? Number.NaN : Number(value));
  const idleValid = Number.isInteger(form.idleLockMinutes) && form.idleLockMinutes >= 1 && form.idleLockMinutes <= 60;

  return (
    <form
      className="settings-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (idleValid) save.mutate();
      }}
      onChange={() => save.isSuccess && save.reset()}
    >
      <div className="form-grid">
        <div className="field">
          <label htmlFor="idle-lock">{s.idleLock}</label>
          <input
            id="idle-lock"
            type="number"
            min={1}
            max={60}
            step={1}
            value={Number.isNaN(form.idleLockMinutes) ? '' : form.idleLockMinutes}
            aria-describedby="idle-lock-help"
            aria-invalid={!idleValid || undefined}
            onChange={(e) => set({ idleLockMinutes: number(e.target.value) })}
          />
          <p id="idle-lock-help" className={idleValid ? 'help' : 'form-error'}>
            {s.idleLockHelp}
          </p>
        </div>
        <div className="field">
          <label htmlFor="clinic-name">{s.clinicName}</label>
          <input id="clinic-name" value={form.clinicName} aria-describedby="clinic-name-help" onChange={(e) => set({ clinicName: e.target.value })} />
          <p id="clinic-name-help" className="help">
            {s.clinicNameHelp}
          </p>
        </div>
        <div className="field">
          <label htmlFor="patients-per-hour">{s.patientsPerHour}</label>
          <input id="patients-per-hour" type="number" min={1} max={100000} value={form.patientsPerHourAlert} onChange={(e) => set({ patientsPerHourAlert: number(e.target.value) })} />
        </div>
        <div className="field">
          <label htmlFor="failed-sign-ins">{s.failedSignIns}</label>
          <input id="failed-sign-ins" type="number" min={1} max={1000} value={form.failedSignInsAlert} onChange={(e) => set({ failedSignInsAlert: number(e.target.value) })} />
        </div>
      </div>
      <div className="field checkbox">
        <input id="req-2fa-admins" type="checkbox" checked={form.requireTwoFactorForAdmins} onChange={(e) => set({ requireTwoFactorForAdmins: e.target.checked })} />
        <label htmlFor="req-2fa-admins">{s.requireTwoFactorAdmins}</label>
      </div>
      <div className="field checkbox">
        <input id="req-2fa-auditors" type="checkbox" checked={form.requireTwoFactorForAuditors} onChange={(e) => set({ requireTwoFactorForAuditors: e.target.checked })} />
        <label htmlFor="req-2fa-auditors">{s.requireTwoFactorAuditors}</label>
      </div>
      <fieldset className="opening-hours">
        <legend>{s.openingHours}</legend>
        <div className="field checkbox">
          <input id="hours-on" type="checkbox" checked={hoursOn} aria-describedby="hours-help" onChange={(e) => setHoursOn(e.target.checked)} />
          <label htmlFor="hours-on">{s.openingHoursOn}</label>
        </div>
        <p id="hours-help" className="help">
          {s.openingHoursHelp}
        </p>
        {hoursOn ? (
          <>
            <fieldset className="days">
              <legend>{s.days}</legend>
              {WEEK.map((d) => (
                <span key={d} className="check">
                  <input
                    id={`day-${d}`}
                    type="checkbox"
                    checked={hours.days.includes(d)}
                    onChange={(e) => setHours({ days: e.target.checked ? [...hours.days, d].sort((a, b) => a - b) : hours.days.filter((x) => x !== d) })}
                  />
                  <label htmlFor={`day-${d}`}>{s.weekdays[d]}</label>
                </span>
              ))}
            </fieldset>
            <div className="form-grid">
              <div className="field">
                <label htmlFor="opens">{s.opens}</label>
                <input id="opens" type="time" value={hours.opens} required onChange={(e) => setHours({ opens: e.target.value })} />
              </div>
              <div className="field">
                <label htmlFor="closes">{s.closes}</label>
                <input id="closes" type="time" value={hours.closes} required onChange={(e) => setHours({ closes: e.target.value })} />
              </div>
            </div>
          </>
        ) : null}
      </fieldset>
      {save.isError ? (
        <p className="form-error" role="alert">
          {errorText(save.error)}
        </p>
      ) : null}
      <div className="form-actions">
        {save.isSuccess ? (
          <span className="ok-note" role="status">
            {s.settingsSaved}
          </span>
        ) : null}
        <button type="submit" className="primary" disabled={save.isPending || !idleValid}>
          {s.saveSettings}
        </button>
      </div>
    </form>
  );
}

export function SettingsSection(): React.JSX.Element {
  const s = useAdminStrings();
  const settings = useSecuritySettings();
  return (
    <section className="admin-section" aria-labelledby="settings-title">
      <h3 id="settings-title">{s.settings}</h3>
      <QueryState query={settings} />
      {settings.data ? <SettingsForm initial={settings.data} /> : null}
    </section>
  );
}
