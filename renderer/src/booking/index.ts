export { BookButton, BookPanel, useCalendarStatus } from './BookPanel';
export { CalendarBanner, IntegrationsSettings } from './BookingSettings';
export { EventsSettings } from './EventsSettings';
export { useBookingStrings } from './strings';
