/**
 * The privacy pieces, for the lead to mount:
 * - `ConsentPanel {contactId}` — the contact panel (status, history, record opt-in/opt-out).
 * - `RequestsList {contactId?}` — with an id: that patient's requests and "Register a request" (the
 *   contact panel); without: every open request with its deadline (admin screen, desk).
 * - `LegalHoldToggle {contactId}` and `ExportButton {contactId, pickFolder?}` — admin, patient view.
 * - `PrivacySettings` (send guard mode + `RetentionSettings`) — the admin's settings.
 * - `SendGuard {text, check, onConfirm, onCancel}` with `useOutgoingCheck()` — the composer, before send;
 *   with `useTemplateCheck()` — the template picker, over what was typed into the variables.
 */
import './privacy.css';

export { ConsentPanel } from './ConsentPanel';
export { ExportButton } from './ExportButton';
export { LegalHoldToggle } from './LegalHoldToggle';
export { RequestsList } from './RequestsList';
export { PrivacySettings, RetentionSettings } from './RetentionSettings';
export { SendGuard, useOutgoingCheck, type OutgoingCheck } from './SendGuard';
export { usePrivacyStrings } from './strings';
export { placeTemplateFindings, useTemplateCheck } from './templateGuard';
