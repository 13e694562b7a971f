// Helpers of the browser suites that read Gatehouse's events (docs/events.md): the event log lines
// (`gatehouse serve`'s output or the Lambda functions' log files), EventBridge through moto, the
// console's audit page and GET {issuer}/api/v1/audit-events, and the administrator's console
// session. Used by access-requests.test.mjs and vendor-trust.test.mjs.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ADMIN, OUT, USER, browserTestbed, submitAndLoad } from './support.mjs';

/** How long a log line or an EventBridge delivery may take to show up after the response. */
export const SETTLE_MS = 10_000;

/** spec, "Events": the actor types. */
export const ACTOR_TYPES = ['user', 'anonymous', 'client', 'operator', 'system'];

export function tag() {
  return randomBytes(4).toString('hex');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** RFC 7591 registration over fetch; asserts 201 and returns the registration. */
export async function registerClient(issuer, metadata) {
  const resp = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(metadata),
  });
  const text = await resp.text();
  assert.equal(resp.status, 201, `registration failed: ${resp.status} ${text}`);
  const body = JSON.parse(text);
  assert.equal(typeof body.client_id, 'string', 'registration answered no client_id');
  return body;
}

/** Every path in `value` (an event) whose value is null: spec, fields that do not apply are absent. */
export function nullPaths(value, at = '$') {
  if (value === null) return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullPaths(v, `${at}[${i}]`));
  if (typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => nullPaths(v, `${at}.${k}`));
  return [];
}

/** A predicate for events of `type` (and of `clientId`, when given). */
export const ofType = (type, clientId) => (e) => e.type === type && (clientId === undefined || e.client_id === clientId);

/** The administrator's user id and email as the actor of their actions. */
export function assertAdminActor(e) {
  assert.equal(e.actor?.type, 'user', `actor: ${safeJson(e.actor)}`);
  assert.equal(e.actor.email, ADMIN.email);
  assert.equal(typeof e.actor.id, 'string');
}

/** The console page of a client, relative to the issuer. */
export const detailPath = (id) => `/admin/clients/${encodeURIComponent(id)}`;

/** The pending queue's row of a client. */
export const queueRow = (page, id) => page.locator(`table#pending tr[data-client-id="${id}"]`);

/** The audit table's rows: `{ id, type, actor, client, via, sourceIp, when }` (trimmed texts). */
export async function auditRows(page) {
  await page.locator('table#audit').waitFor();
  return page.locator('table#audit tr[data-event-id]').evaluateAll((rows) =>
    rows.map((r) => {
      const cell = (c) => (r.querySelector(`td.${c}`)?.textContent ?? '<missing>').trim();
      return {
        id: r.getAttribute('data-event-id'),
        type: cell('type'),
        actor: cell('actor'),
        client: cell('client'),
        via: cell('via'),
        sourceIp: cell('source-ip'),
        when: cell('when'),
      };
    }),
  );
}

// ------------------------------------------------------------------ moto: EventBridge → SQS

/**
 * One JSON-protocol request to moto (`service` `events` or `sqs`). moto does not check
 * signatures; the Authorization header only tells it the service and region.
 */
export async function moto(endpoint, service, target, body) {
  const resp = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': service === 'sqs' ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1',
      'x-amz-target': target,
      'x-amz-date': '20260101T000000Z',
      authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/${service}/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`,
    },
    body: JSON.stringify(body),
  });
  const text = await resp.text();
  assert.equal(resp.status, 200, `moto ${target} answered ${resp.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

/**
 * A fresh event bus in moto (named `{prefix}-{random}`) whose rule forwards every `gatehouse`
 * event to a fresh SQS queue. Resolves to `{ bus, drain(), deliveries(n) }`: drain() resolves to
 * the EventBridge envelopes delivered so far (each `{ source, 'detail-type', detail, … }`) and
 * removes them from the queue; deliveries(n) drains until `n` have come (or SETTLE_MS passed),
 * then once more, and resolves to all of them.
 */
export async function eventBridgeTap(endpoint, prefix = 'gatehouse-test') {
  const name = `${prefix}-${tag()}`;
  await moto(endpoint, 'events', 'AWSEvents.CreateEventBus', { Name: name });
  const { QueueUrl: queueUrl } = await moto(endpoint, 'sqs', 'AmazonSQS.CreateQueue', { QueueName: name });
  const attrs = await moto(endpoint, 'sqs', 'AmazonSQS.GetQueueAttributes', { QueueUrl: queueUrl, AttributeNames: ['QueueArn'] });
  await moto(endpoint, 'events', 'AWSEvents.PutRule', {
    Name: `${name}-all`,
    EventBusName: name,
    EventPattern: JSON.stringify({ source: ['gatehouse'] }),
    State: 'ENABLED',
  });
  await moto(endpoint, 'events', 'AWSEvents.PutTargets', {
    Rule: `${name}-all`,
    EventBusName: name,
    Targets: [{ Id: 'queue', Arn: attrs.Attributes.QueueArn }],
  });
  const tap = {
    bus: name,
    async drain() {
      const out = [];
      for (;;) {
        const r = await moto(endpoint, 'sqs', 'AmazonSQS.ReceiveMessage', { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 });
        const messages = r.Messages ?? [];
        if (messages.length === 0) return out;
        for (const m of messages) {
          out.push(JSON.parse(m.Body));
          await moto(endpoint, 'sqs', 'AmazonSQS.DeleteMessage', { QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle });
        }
      }
    },
    async deliveries(n) {
      const deadline = Date.now() + SETTLE_MS;
      const delivered = [];
      while (delivered.length < n && Date.now() < deadline) {
        delivered.push(...(await tap.drain()));
        if (delivered.length < n) await sleep(200);
      }
      delivered.push(...(await tap.drain()));
      return delivered;
    },
  };
  return tap;
}

// ------------------------------------------------------------------ one suite's testbed

/**
 * The testbed of one run of an events suite (made in the `describe` callback; start() in its
 * `before`, stop() in its `after`): a browser testbed with JSON logs (`gatehouse serve`, or the
 * Lambda path with a moto EventBridge bus), and the helpers that read its events and drive its
 * console.
 *
 * Options: `lambda` (the Lambda path); `busPrefix` (the moto bus's name prefix); `admin`, a
 * function answering the administrator's browser (a freshPage(), once the suite signed them in
 * on the console; nothing before) and `adminTest`, the test that signs them in (for the
 * messages); `eventLevel`, when
 * given, the level every event log line must have; `actorTypes`, when given, the actor types
 * assertWellFormed() accepts.
 *
 * The result: `secrets` (values no event may contain; the passwords of ADMIN and USER from
 * start() on), `startedAt` (seconds), start() (resolves to `{ gh, cb, issuer, tap }`, `tap` on
 * the Lambda path only), stop(), and the helpers below.
 */
export function eventsTestbed({ lambda, busPrefix, admin, adminTest, eventLevel, actorTypes }) {
  const env = { GATEHOUSE_LOG_FORMAT: 'json' };
  const bed = browserTestbed(undefined, env, { lambda });
  const secrets = new Map();
  const startedAt = Math.floor(Date.now() / 1000);
  let gh;
  let issuer;

  /** Starts the testbed (the moto bus first, on the Lambda path); resolves to `{ gh, cb, issuer, tap }`. */
  async function start() {
    /** Lambda path only: the moto EventBridge bus and its queue. */
    let tap;
    if (lambda) {
      const endpoint = process.env.GATEHOUSE_TEST_DYNAMODB_ENDPOINT;
      assert.ok(endpoint, 'the Lambda path needs moto: set GATEHOUSE_TEST_DYNAMODB_ENDPOINT (tests/run does)');
      tap = await eventBridgeTap(endpoint, busPrefix);
      // spec: EventBridge PutEvents for the notifying types when GATEHOUSE_EVENT_BUS is set, at
      // GATEHOUSE_EVENTS_ENDPOINT (credentials and region from the usual AWS env, which
      // startLambdaGateway sets).
      Object.assign(env, { GATEHOUSE_EVENT_BUS: tap.bus, GATEHOUSE_EVENTS_ENDPOINT: endpoint });
    }
    let cb;
    ({ gh, cb } = await bed.start());
    issuer = `${gh.base}/t/demo`;
    secrets.set('the administrator\'s password', ADMIN.password);
    secrets.set('the user\'s password', USER.password);
    return { gh, cb, issuer, tap };
  }

  // ---------------------------------------------------------------- reading the events

  /** The server's output: `gatehouse serve`'s stdout/stderr, or every Lambda function's log file. */
  function serverOutput() {
    if (!lambda) return gh.output();
    const dir = path.join(OUT, `lambda-${new URL(gh.base).port}`);
    return readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => readFileSync(path.join(dir, f), 'utf8'))
      .join('\n');
  }

  /**
   * Every event the server logged so far, in order: spec, one JSON object per line, target
   * `gatehouse::events`, message "gatehouse event", the fields flattened at the top level:
   * `event_type` and `event` (the representation as a JSON string).
   */
  function loggedEvents() {
    const events = [];
    for (const line of serverOutput().split('\n')) {
      if (!line.startsWith('{')) continue;
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        continue;
      }
      if (rec.target !== 'gatehouse::events' || rec.message !== 'gatehouse event') continue;
      assert.equal(typeof rec.event, 'string', `the event log line carries no top-level "event" string: ${line}`);
      if (eventLevel !== undefined) assert.equal(rec.level, eventLevel, `event line level: ${line}`);
      const event = JSON.parse(rec.event);
      assert.equal(rec.event_type, event.type, `event_type differs from the event's type: ${line}`);
      events.push(event);
    }
    return events;
  }

  /** Waits until the log holds `n` events matching `pred` (exactly `n` when `exact`); resolves to them. */
  async function waitForEvents(pred, what, { n = 1, exact = true } = {}) {
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const found = loggedEvents().filter(pred);
      if (found.length >= n || Date.now() > deadline) {
        if (exact) assert.equal(found.length, n, `expected ${n} ${what} event(s) in the log, found ${found.length}: ${safeJson(found)}`);
        else assert.ok(found.length >= n, `expected at least ${n} ${what} event(s) in the log, found ${found.length}`);
        return found;
      }
      await sleep(100);
    }
  }

  /** The checks every event passes (spec, "Events"). */
  function assertWellFormed(e) {
    assert.match(e.id ?? '', /^[0-9a-f]{32}$/, `event id: ${safeJson(e)}`);
    assert.equal(e.tenant, 'demo');
    assert.ok(Number.isInteger(e.occurred_at), `occurred_at: ${safeJson(e)}`);
    assert.ok(e.occurred_at >= startedAt - 5 && e.occurred_at <= Math.floor(Date.now() / 1000) + 5, `occurred_at out of the test's time: ${safeJson(e)}`);
    assert.deepEqual(nullPaths(e), [], `null fields (spec: absent, never null): ${safeJson(e)}`);
    if (actorTypes) assert.ok(actorTypes.includes(e.actor?.type), `actor: ${safeJson(e)}`);
  }

  // ---------------------------------------------------------------- browser and console

  /** A fresh browser context (see support.mjs) that also collects its page errors in `pageErrors`. */
  async function freshPage() {
    const p = await bed.freshPage();
    p.pageErrors = [];
    p.page.on('pageerror', (e) => p.pageErrors.push(String(e)));
    return p;
  }

  function signedInAdmin() {
    const a = admin();
    assert.ok(a, `needs the administrator signed in on the console (${adminTest})`);
    return a;
  }

  /** Opens a console page in the administrator's context; asserts the status (200 unless told). */
  async function adminGoto(pathAndQuery, status = 200) {
    const a = signedInAdmin();
    const resp = await a.page.goto(`${issuer}${pathAndQuery}`);
    assert.equal(resp?.status(), status, `GET ${pathAndQuery} answered ${resp?.status()}: ${await a.page.locator('body').innerText()}`);
    return a.page;
  }

  /** One admin API request with the administrator's console session (GET needs no CSRF token). */
  async function adminApi(pathAndQuery, { method = 'GET' } = {}) {
    const a = signedInAdmin();
    const r = await a.context.request.fetch(`${issuer}/api/v1${pathAndQuery}`, { method, maxRedirects: 0 });
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: r.status(), body, text };
  }

  /** The cookies of a context that are session secrets (never in an event). */
  async function rememberSessionSecrets(context, who) {
    for (const c of await context.cookies(issuer)) {
      if (c.value.length >= 16) secrets.set(`${who}'s ${c.name} cookie`, c.value);
    }
  }

  /** The console's audit page through its filter form (`values`: type, actor, client_id); resolves to the page. */
  async function filterAudit(values) {
    const page = await adminGoto('/admin/audit');
    const form = page.locator('form#audit-filter');
    await form.waitFor();
    await form.locator('select[name=type]').selectOption(values.type ?? '');
    await form.locator('input[name=actor]').fill(values.actor ?? '');
    await form.locator('input[name=client_id]').fill(values.client_id ?? '');
    // spec names no submit button: the form's own, or a plain submission of the form.
    const button = form.locator('button[type=submit], input[type=submit], button:not([type])');
    let final;
    if ((await button.count()) > 0) {
      ({ final } = await submitAndLoad(page, button.first()));
    } else {
      [final] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), form.evaluate((f) => f.requestSubmit())]);
    }
    assert.equal(final.status(), 200, `the filtered audit page answered ${final.status()}: ${await page.locator('body').innerText()}`);
    return page;
  }

  /** Every audit event from the API (following next_cursor), newest first. */
  async function allAuditEvents(query = '') {
    const out = [];
    let cursor;
    for (let pages = 0; pages < 50; pages++) {
      const q = new URLSearchParams(query);
      q.set('limit', '100');
      if (cursor) q.set('cursor', cursor);
      const r = await adminApi(`/audit-events?${q}`);
      assert.equal(r.status, 200, `GET /audit-events?${q} answered ${r.status}: ${r.text}`);
      assert.ok(Array.isArray(r.body.data), `no data array: ${r.text}`);
      out.push(...r.body.data);
      cursor = r.body.next_cursor;
      if (cursor === undefined) return out;
      assert.equal(typeof cursor, 'string');
    }
    assert.fail('more than 50 pages of audit events');
  }

  /** No secret collected (at least `atLeast` of them) is in the event log lines or the audit API. */
  async function assertNothingSecret(atLeast) {
    const texts = {
      'the event log lines': loggedEvents().map((e) => JSON.stringify(e)).join('\n'),
      'the audit API': JSON.stringify(await allAuditEvents()),
    };
    assert.ok(secrets.size >= atLeast, `too few secrets collected to check: ${[...secrets.keys()]}`);
    for (const [where, text] of Object.entries(texts)) {
      for (const [what, value] of secrets) {
        assert.ok(typeof value === 'string' && value.length >= 8, `${what} is not a usable secret`);
        assert.ok(!text.includes(value), `${where} contain ${what}`);
      }
    }
  }

  return {
    secrets,
    startedAt,
    start,
    stop: () => bed.stop(),
    loggedEvents,
    waitForEvents,
    assertWellFormed,
    freshPage,
    adminGoto,
    adminApi,
    rememberSessionSecrets,
    filterAudit,
    allAuditEvents,
    assertNothingSecret,
  };
}
