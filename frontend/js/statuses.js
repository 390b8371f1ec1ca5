// Run statuses, named once for the whole frontend (the server's are pinwheel/protocol.py's
// ACTIVE_STATUSES and TERMINAL_STATUSES).
export const QUEUED = "queued", RUNNING = "running", SUCCEEDED = "succeeded", FAILED = "failed", CANCELLED = "cancelled";
export const STATUSES = [QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED];
export const ACTIVE_STATUSES = new Set([QUEUED, RUNNING]); // the run may still change: stream, refresh, cancel
export const isActive = (status) => ACTIVE_STATUSES.has(status);
