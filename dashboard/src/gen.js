// The generation in force, shown in the top bar and refreshed after every change.
import * as api from './api.js';
import { h } from './dom.js';

export const genBadge = h('span.gen', { title: 'the hot-reload generation serving requests' }, '');

export async function refreshGeneration() {
  try {
    const s = await api.status();
    genBadge.textContent = `generation ${s.generation}`;
    const rejected = !!s.lastError && (!s.lastSuccess || s.lastError.at >= s.lastSuccess);
    genBadge.classList.toggle('warn', rejected);
    genBadge.title = rejected ? 'the last change was rejected: see Status' : 'the hot-reload generation serving requests';
    return s;
  } catch {
    return null;
  }
}
