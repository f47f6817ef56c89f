// Tells a webhook (its URL is the NOTIFY_URL secret) about the new user. Returns at once: the
// request continues on the sandbox after cb, as it did on Auth0.
module.exports = function (user, context, cb) {
  fetch(context.webtask.secrets.NOTIFY_URL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ event: 'user.registered', id: user.id, email: user.email })
  }).then(function (res) {
    console.log('notified', res.status);
  }, function (err) {
    console.error('notification failed:', err.message);
  });

  cb();
};
