export { Sidebar, ErrorState } from './Sidebar';
export { Highlighted, splitHighlights } from './Highlighted';
export { contactLabel, formatNumber, initials } from './names';
