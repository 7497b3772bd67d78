export { AdminScreen } from './AdminScreen';
export { SecurityAlerts } from './SecurityAlerts';
export { useDateTime } from './useDateTime';
