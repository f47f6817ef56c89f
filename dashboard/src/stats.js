// Per-hook figures from the newest run records (the runs API): last outcome, p50/p99 of the time
// the caller waited, error rate. `null` when the runs API is not there.
import * as api from './api.js';
import { quantile } from './dom.js';

export async function hookStats(limit = 1000) {
  let records;
  try {
    records = await api.runs({ limit });
  } catch (e) {
    if (api.isMissingRoute(e) || e.status === 403) return null;
    throw e;
  }
  const by = new Map();
  for (const r of records) {
    // Newest first: the first record seen of a hook is its last run.
    const key = r.hook_id || r.hook;
    if (!by.has(key)) by.set(key, { hook: r.hook, point: r.point, last: r.outcome, lastAt: r.start, durations: [], outcomes: {} });
    const s = by.get(key);
    s.durations.push(r.duration_ms);
    s.outcomes[r.outcome] = (s.outcomes[r.outcome] || 0) + 1;
  }
  for (const s of by.values()) {
    s.calls = s.durations.length;
    s.p50 = quantile(s.durations, 0.5);
    s.p99 = quantile(s.durations, 0.99);
    const bad = s.calls - (s.outcomes.ok || 0) - (s.outcomes.denied || 0);
    s.errorRate = s.calls ? bad / s.calls : 0;
  }
  return { byHook: by, sample: records.length };
}
