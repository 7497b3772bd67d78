/** The table lives in shared/ so the composer checks the same limits before it uploads. */
export * from '../../../shared/mediaLimits';
