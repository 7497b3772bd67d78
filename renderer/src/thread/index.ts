export { ThreadView } from './ThreadView';
export { Composer, fillTemplate } from './Composer';
