// Leaving a page with unsaved work: the page registers a check, the router asks before leaving.
let guard = null;

/** `isDirty()` says whether the page now shown has unsaved work. */
export function guardLeaving(isDirty) {
  guard = isDirty;
}

/** May the router leave the page shown? Asks when it has unsaved work. */
export function mayLeave() {
  if (!guard?.()) return true;
  return window.confirm('Leave this hook? Its unsaved changes will be lost.');
}

export function clearGuard() {
  guard = null;
}
