// `require('aws-sdk')`: the part of aws-sdk v2 hooks use — Amazon SNS, for SMS from
// send-phone-message hooks — written to send what the real v2 package sends: a Query-protocol
// POST (parameters sorted, AWS's URI escaping), Signature V4, and the same result and error
// shapes (`{ ResponseMetadata: { RequestId }, MessageId }`; errors with code, statusCode,
// retryable). Auth0 offered aws-sdk as a built-in too; the real v2 package is 90 MB, compiles
// thousands of files per hook, and has been out of support since 2025-09-08.
// Owns: AWS.config, Credentials, SNS (every SNS action, flat or with the Query protocol's
// maps and lists), AWS.Request's promise()/send()/on(), and v2's retries (`maxRetries`, default
// 3, with its jittered exponential backoff, `retryDelayOptions`) of network errors, 5xx and
// throttling; a network failure ends as v2's `UnknownEndpoint` ("Inaccessible host: ...").
// Must not touch: other services — they throw ERR_HOOKGATE_UNSUPPORTED when constructed.
'use strict';
const EventEmitter = require('events');
const crypto = require('crypto');
const https = require('https');
const http = require('http');
const { stub } = require('_hookgate/unsupported');

const VERSION = '2.1693.0';

function hmac(key, data, enc) { return crypto.createHmac('sha256', key).update(data, 'utf8').digest(enc); }
function sha256(data) { return crypto.createHash('sha256').update(data, 'utf8').digest('hex'); }
function uriEscape(s) {
  return encodeURIComponent(s)
    .replace(/[^A-Za-z0-9_.~\-%]+/g, escape)
    .replace(/[*]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase());
}
function awsError(message, fields) {
  const e = new Error(message);
  Object.assign(e, fields);
  e.time = new Date();
  if (e.code && !fields.name) e.name = e.code;
  return e;
}

class Credentials {
  constructor(accessKeyId, secretAccessKey, sessionToken) {
    if (accessKeyId && typeof accessKeyId === 'object') {
      const o = accessKeyId;
      accessKeyId = o.accessKeyId; secretAccessKey = o.secretAccessKey; sessionToken = o.sessionToken;
    }
    this.accessKeyId = accessKeyId;
    this.secretAccessKey = secretAccessKey;
    this.sessionToken = sessionToken;
    this.expired = false;
  }
  get(cb) { if (cb) cb(null); }
  getPromise() { return Promise.resolve(); }
}
class EnvironmentCredentials extends Credentials {
  constructor(prefix) {
    const env = process.env;
    prefix = prefix || 'AWS';
    super(env[prefix + '_ACCESS_KEY_ID'], env[prefix + '_SECRET_ACCESS_KEY'], env[prefix + '_SESSION_TOKEN']);
  }
}

class Config {
  constructor(options) { this.update(options || {}); }
  update(options) {
    options = options || {};
    for (const k of Object.keys(options)) this[k] = options[k];
    if (options.accessKeyId || options.secretAccessKey) {
      this.credentials = new Credentials(options.accessKeyId, options.secretAccessKey, options.sessionToken);
    }
  }
}

// The credentials a call signs with, as v2 looks for them: the service's options, AWS.config,
// then the AWS_* variables of process.env (a hook's own, per call — never the host's).
function resolveCredentials(cfg) {
  const c = cfg.credentials || AWS.config.credentials ||
    (AWS.config.accessKeyId ? new Credentials(AWS.config.accessKeyId, AWS.config.secretAccessKey, AWS.config.sessionToken) : null) ||
    new EnvironmentCredentials('AWS');
  if (!c || !c.accessKeyId || !c.secretAccessKey) return null;
  return c;
}

function amzDate(d) { return d.toISOString().replace(/[:-]|\.\d{3}/g, ''); }

// Query-protocol parameters: nested structures as `A.B`, lists as `A.member.N`, maps as
// `A.entry.N.<key>`/`A.entry.N.<value>` with SNS's names for key and value.
function flatten(prefix, value, out, mapNames) {
  if (value === undefined || value === null) return;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) { out[prefix] = Buffer.from(value).toString('base64'); return; }
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(prefix + '.member.' + (i + 1), v, out, mapNames));
    return;
  }
  if (typeof value === 'object') {
    const names = mapNames[prefix.split('.').pop()];
    if (names) {
      Object.keys(value).forEach((k, i) => {
        const base = prefix + '.entry.' + (i + 1);
        out[base + '.' + names[0]] = k;
        flatten(base + '.' + names[1], value[k], out, mapNames);
      });
      return;
    }
    for (const k of Object.keys(value)) flatten(prefix ? prefix + '.' + k : k, value[k], out, mapNames);
    return;
  }
  out[prefix] = String(value);
}

function xmlText(xml, tag) {
  const m = new RegExp('<' + tag + '>([\\s\\S]*?)</' + tag + '>').exec(xml);
  return m ? m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&') : undefined;
}

// AWS.Service#throttledError.
const THROTTLING = ['ProvisionedThroughputExceededException', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded',
  'RequestThrottled', 'RequestThrottledException', 'TooManyRequestsException', 'TransactionInProgressException', 'EC2ThrottledException'];
function throttled(statusCode, code) { return statusCode === 429 || THROTTLING.indexOf(code) >= 0; }

// A socket error as v2 hands it over: the Node error turned into a NetworkingError, which v2's
// ENOTFOUND_ERROR listener turns into UnknownEndpoint whenever the error has a numeric errno
// (its DNS check is always true then), naming the error's port as it reads it.
function networkError(e, hostname, region) {
  const networking = awsError(e.message, { code: 'NetworkingError', region, hostname, retryable: true });
  networking.errno = e.errno; networking.syscall = e.syscall;
  if (e.address !== undefined) networking.address = e.address;
  if (e.port !== undefined) networking.port = e.port;
  if (e.errno !== 'ENOTFOUND' && typeof e.errno !== 'number') return networking;
  return awsError('Inaccessible host: `' + hostname + '\' at port `' + e.port +
    '\'. This service may not be available in the `' + region + '\' region.', {
    code: 'UnknownEndpoint', region, hostname, retryable: true, originalError: networking,
  });
}

class AWSRequest extends EventEmitter {
  constructor(service, operation, params) {
    super();
    this.service = service;
    this.operation = operation;
    this.params = params || {};
    this.response = { data: null, error: null, requestId: null, retryCount: 0 };
    this._promise = null;
  }
  promise() {
    if (!this._promise) {
      this._promise = new Promise((resolve, reject) => this.send((err, data) => (err ? reject(err) : resolve(data))));
    }
    return this._promise;
  }
  send(cb) {
    if (this._sent) { if (cb) this.on('complete', () => cb(this.response.error, this.response.data)); return this; }
    this._sent = true;
    this.service._callWithRetries(this.operation, this.params, (err, data, requestId, retryCount) => {
      this.response.retryCount = retryCount;
      this.response.error = err || null;
      this.response.data = err ? null : data;
      this.response.requestId = requestId || null;
      // v2's request events are not Node's: an 'error' nobody listens to is not thrown.
      if (err) { if (this.listenerCount('error')) this.emit('error', err, this.response); } else this.emit('success', this.response);
      this.emit('complete', this.response);
      if (cb) cb(err || null, err ? null : data);
    });
    return this;
  }
  abort() { return this; }
  createReadStream() { throw awsError('createReadStream is not available in hookgate\'s aws-sdk', { code: 'ERR_HOOKGATE_UNSUPPORTED' }); }
}

const SNS_ACTIONS = ['addPermission', 'checkIfPhoneNumberIsOptedOut', 'confirmSubscription', 'createPlatformApplication',
  'createPlatformEndpoint', 'createSMSSandboxPhoneNumber', 'createTopic', 'deleteEndpoint', 'deletePlatformApplication',
  'deleteSMSSandboxPhoneNumber', 'deleteTopic', 'getEndpointAttributes', 'getPlatformApplicationAttributes',
  'getSMSAttributes', 'getSMSSandboxAccountStatus', 'getSubscriptionAttributes', 'getTopicAttributes',
  'listEndpointsByPlatformApplication', 'listOriginationNumbers', 'listPhoneNumbersOptedOut', 'listPlatformApplications',
  'listSMSSandboxPhoneNumbers', 'listSubscriptions', 'listSubscriptionsByTopic', 'listTagsForResource', 'listTopics',
  'optInPhoneNumber', 'publish', 'publishBatch', 'removePermission', 'setEndpointAttributes',
  'setPlatformApplicationAttributes', 'setSMSAttributes', 'setSubscriptionAttributes', 'setTopicAttributes', 'subscribe',
  'tagResource', 'unsubscribe', 'untagResource', 'verifySMSSandboxPhoneNumber'];
// SNS's map parameters and the names their keys and values take on the wire.
const SNS_MAPS = { MessageAttributes: ['Name', 'Value'], Attributes: ['key', 'value'], attributes: ['key', 'value'] };

class SNS {
  constructor(options) {
    this.config = Object.assign({}, AWS.config, options || {});
    if (options && (options.accessKeyId || options.secretAccessKey)) {
      this.config.credentials = new Credentials(options.accessKeyId, options.secretAccessKey, options.sessionToken);
    }
    this.apiVersions = ['2010-03-31'];
  }
  _endpoint() {
    if (this.config.endpoint) {
      const e = String(this.config.endpoint.href || this.config.endpoint);
      return new URL(/^[a-z]+:\/\//i.test(e) ? e : 'https://' + e);
    }
    const region = this.config.region;
    const suffix = /^cn-/.test(region) ? 'amazonaws.com.cn' : 'amazonaws.com';
    return new URL('https://sns.' + region + '.' + suffix + '/');
  }
  // v2's retry loop (AWS.Service#retryableError, util.calculateRetryDelay): a retryable error is
  // tried again up to `maxRetries` times after `random() * 2^retryCount * base` ms.
  _callWithRetries(operation, params, done) {
    const maxRetries = typeof this.config.maxRetries === 'number' ? this.config.maxRetries : 3;
    const delays = this.config.retryDelayOptions || {};
    const base = typeof delays.base === 'number' ? delays.base : 100;
    let retryCount = 0;
    const attempt = () => this._call(operation, params, (err, data, requestId) => {
      if (err && err.retryable && retryCount < maxRetries) {
        const delay = typeof delays.customBackoff === 'function'
          ? delays.customBackoff(retryCount, err)
          : Math.random() * (Math.pow(2, retryCount) * base);
        retryCount++;
        if (delay >= 0) { setTimeout(attempt, delay); return; }
      }
      done(err, data, requestId, retryCount);
    });
    attempt();
  }
  _call(operation, params, done) {
    const region = this.config.region || process.env.AWS_REGION;
    if (!region) {
      process.nextTick(done, awsError('Missing region in config', { code: 'ConfigError', retryable: false }));
      return;
    }
    this.config.region = region;
    const creds = resolveCredentials(this.config);
    if (!creds) {
      process.nextTick(done, awsError('Missing credentials in config, if using AWS_CONFIG_FILE, set AWS_SDK_LOAD_CONFIG=1', { code: 'CredentialsError', statusCode: undefined, retryable: false }));
      return;
    }
    const action = operation.charAt(0).toUpperCase() + operation.slice(1);
    const flat = {};
    flatten('', params, flat, SNS_MAPS);
    flat.Action = action;
    flat.Version = '2010-03-31';
    const body = Object.keys(flat).sort().map((k) => uriEscape(k) + '=' + uriEscape(flat[k])).join('&');
    const url = this._endpoint();
    const now = new Date();
    const date = amzDate(now);
    const day = date.slice(0, 8);
    const payloadHash = sha256(body);
    const headers = {
      'User-Agent': 'aws-sdk-nodejs/' + VERSION + ' linux/' + process.version + ' promise',
      'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
      'X-Amz-Content-Sha256': payloadHash,
      'Content-Length': String(Buffer.byteLength(body)),
      'Host': url.host,
      'X-Amz-Date': date,
    };
    if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
    const signed = Object.keys(headers).map((h) => h.toLowerCase()).filter((h) => h !== 'user-agent' && h !== 'content-length' && h !== 'content-type').sort();
    const lower = {};
    for (const k of Object.keys(headers)) lower[k.toLowerCase()] = String(headers[k]).trim().replace(/\s+/g, ' ');
    const canonical = ['POST', url.pathname || '/', '', signed.map((h) => h + ':' + lower[h] + '\n').join(''), signed.join(';'), payloadHash].join('\n');
    const scope = day + '/' + region + '/sns/aws4_request';
    const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
    const kDate = hmac('AWS4' + creds.secretAccessKey, day);
    const key = hmac(hmac(hmac(kDate, region), 'sns'), 'aws4_request');
    headers.Authorization = 'AWS4-HMAC-SHA256 Credential=' + creds.accessKeyId + '/' + scope +
      ', SignedHeaders=' + signed.join(';') + ', Signature=' + hmac(key, toSign, 'hex');
    const mod = url.protocol === 'http:' ? http : https;
    const req = mod.request({ protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path: url.pathname + url.search, method: 'POST', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const xml = Buffer.concat(chunks).toString('utf8');
        const requestId = res.headers['x-amzn-requestid'] || xmlText(xml, 'RequestId') || null;
        if (res.statusCode >= 300) {
          const code = xmlText(xml, 'Code') || 'UnknownError';
          done(awsError(xmlText(xml, 'Message') || String(res.statusCode), {
            code, requestId: res.headers['x-amzn-requestid'] || null, statusCode: res.statusCode,
            retryable: res.statusCode >= 500 || throttled(res.statusCode, code), retryDelay: 0,
          }), null, requestId);
          return;
        }
        const data = { ResponseMetadata: { RequestId: requestId } };
        const result = xmlText(xml, action + 'Result');
        if (result !== undefined) {
          const re = /<(\w+)>([^<]*)<\/\1>/g;
          let m;
          while ((m = re.exec(result))) data[m[1]] = xmlText(m[0], m[1]);
        }
        done(null, data, requestId);
      });
    });
    req.on('error', (e) => done(networkError(e, url.hostname, region)));
    req.end(body);
  }
}
for (const op of SNS_ACTIONS) {
  SNS.prototype[op] = function (params, cb) {
    if (typeof params === 'function') { cb = params; params = {}; }
    const r = new AWSRequest(this, op, params);
    if (typeof cb === 'function') r.send(cb);
    return r;
  };
}

const AWS = {
  VERSION,
  Config,
  config: new Config({}),
  Credentials,
  EnvironmentCredentials,
  SNS,
  Request: AWSRequest,
  util: { uriEscape },
};
Object.assign(AWS, stub('AWS', "hookgate's built-in aws-sdk provides SNS (for SMS from send-phone-message hooks); call other AWS APIs with fetch or https",
  ['S3', 'SES', 'SQS', 'DynamoDB', 'Lambda', 'KMS', 'SecretsManager', 'STS', 'CloudWatch', 'CloudWatchLogs', 'Kinesis', 'Firehose', 'EventBridge', 'CognitoIdentityServiceProvider', 'SSM', 'Pinpoint']));
module.exports = AWS;
