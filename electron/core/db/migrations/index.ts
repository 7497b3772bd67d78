import type { Migration } from '../types';
import * as m0010 from './0010-initial';

/** Every migration, oldest first. A new schema version is a new file here, numbered in steps of 10. */
export const MIGRATIONS: readonly Migration[] = [m0010];
