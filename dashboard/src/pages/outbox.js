// The outbox: pending and dead post-events (post-user-registration, post-change-password), their
// attempts and last error; retry a dead letter, drop an event (with confirmation).

import * as api from '../api.js';
import { h, clear, toast, confirmDialog, fmtTime } from '../dom.js';

export async function outboxPage(main) {
  const body = h('div');
  let timer = null;
  const draw = async () => {
    let events;
    try {
      events = await api.outbox();
    } catch (e) {
      return clear(body, h('div.banner.error', {}, e.status === 403 ? `This token cannot read the outbox: ${e.message}` : e.message));
    }
    const section = (state, title, note) => {
      const list = events.filter((e) => e.state === state);
      return h(
        'section.point',
        { dataset: { state } },
        h('div.point-head', {}, h('h2', {}, title), h('span.count', {}, String(list.length)), h('span.muted.small', {}, note)),
        list.length
          ? h(
              'table.outbox',
              {},
              h('thead', {}, h('tr', {}, ['Seq', 'Point', 'Route', 'Event', 'Attempts', 'Last error', 'Created', state === 'pending' ? 'Next attempt' : '', ''].map((t) => h('th', {}, t)))),
              h(
                'tbody',
                {},
                list.map((e) =>
                  h(
                    'tr',
                    { dataset: { seq: e.seq } },
                    h('td.num', {}, String(e.seq)),
                    h('td.small', {}, e.trigger),
                    h('td.small', {}, e.route),
                    h('td.mono.small', { title: e.doneHooks.length ? `done: ${e.doneHooks.join(', ')}` : '' }, e.id),
                    h('td.num', {}, String(e.attempts)),
                    h('td.small.err-text', {}, e.lastError || ''),
                    h('td.small.mono', {}, fmtTime(e.createdMs)),
                    h('td.small.mono', {}, state === 'pending' ? fmtTime(e.dueMs) : ''),
                    h(
                      'td.actions',
                      {},
                      state === 'dead'
                        ? h(
                            'button.small',
                            {
                              dataset: { action: 'retry' },
                              onclick: async () => {
                                try {
                                  await api.retryEvent(e.seq);
                                  toast(`Event ${e.seq} queued again`);
                                } catch (err) {
                                  toast(err.message, 'error');
                                }
                                draw();
                              },
                            },
                            'Retry',
                          )
                        : null,
                      h(
                        'button.link.danger',
                        {
                          dataset: { action: 'drop' },
                          onclick: async () => {
                            if (!(await confirmDialog(`Drop event ${e.seq}?`, 'Its hooks will never run for it.', 'Drop'))) return;
                            try {
                              await api.dropEvent(e.seq);
                              toast(`Event ${e.seq} dropped`);
                            } catch (err) {
                              toast(err.message, 'error');
                            }
                            draw();
                          },
                        },
                        'Drop',
                      ),
                    ),
                  ),
                ),
              ),
            )
          : h('p.empty', {}, state === 'pending' ? 'Nothing waiting.' : 'No dead letter.'),
      );
    };
    clear(
      body,
      section('pending', 'Pending', 'delivered at least once, retried with backoff'),
      section('dead', 'Dead letters', 'out of attempts; retry once the cause is fixed'),
    );
  };
  clear(
    main,
    h('div.page-head', {}, h('h1', {}, 'Outbox'), h('p.muted', {}, 'Post-events wait here until their hooks succeed. Refreshed every 5 s.'), h('button', { onclick: draw }, 'Refresh')),
    body,
  );
  await draw();
  timer = setInterval(draw, 5000);
  return () => clearInterval(timer);
}
