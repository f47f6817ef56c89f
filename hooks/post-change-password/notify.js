// Tells a webhook (its URL is the NOTIFY_URL secret) that a password changed, and waits for it.
module.exports = async function (user, context, cb) {
  const res = await fetch(context.webtask.secrets.NOTIFY_URL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ event: 'user.password_changed', id: user.id, at: user.last_password_reset })
  });
  if (!res.ok) return cb(new Error('notification failed with HTTP ' + res.status));
  cb();
};
