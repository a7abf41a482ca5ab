#!/usr/bin/env node
// A hubbub agent in Node.js, speaking the wire protocol of docs/protocol.md directly.
//
//   node agent.js ws://127.0.0.1:8765 [name]
//
// Registers an agent (default name "node-agent") with capability "echo", answers every
// invite, replies "echo: <question>" to the question of each consulting channel where it is
// the respondent, acks every delivery, prints one line per event, and exits 0 once a channel
// it answered in is closed (1 on error or after NODE_AGENT_TIMEOUT_MS, default 60 s).
// If the name is taken it acts as that agent again (hello), and the hub replays what it missed.
// Set HUBBUB_API_KEY on a hub started with --auth-keys.
'use strict';

const WebSocket = require('ws');

const url = process.argv[2];
const name = process.argv[3] || 'node-agent';
const timeoutMs = Number(process.env.NODE_AGENT_TIMEOUT_MS || 60000);
const apiKey = process.env.HUBBUB_API_KEY || '';
const auth = apiKey ? { scheme: 'api_key', claim: { api_key: apiKey } } : { scheme: 'none', claim: {} };

if (!url) {
  console.error('usage: node agent.js <hub url, e.g. ws://127.0.0.1:8765> [agent name]');
  process.exit(2);
}

function log(line) {
  console.log(`[${name}] ${line}`);
}

function fail(message) {
  console.error(`[${name}] ${message}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);

// perMessageDeflate off: the hub does not compress.
const ws = new WebSocket(url, { perMessageDeflate: false });
const pending = new Map(); // request_id -> {resolve, reject}
let nextRequestId = 1;
let agentId = null;
let welcomed = null; // resolves on "welcome" after a hello
const channels = new Map(); // channel_id -> ChannelMetadata (cached from get_channel)
const answered = new Set(); // channels this agent replied in
let done = false;
const lanes = new Map(); // channel_id -> promise chain: deliveries are handled in order per channel

class HubError extends Error {
  constructor(frame) {
    super(`${frame.error_code}: ${frame.error_message}`);
    this.code = (frame.result && frame.result.code) || frame.error_code;
    this.reason = (frame.result && frame.result.reason) || '';
  }
}

function send(frame) {
  ws.send(JSON.stringify(frame));
}

// One request frame; resolves with the response's result, rejects with a HubError.
function request(op, params) {
  const requestId = String(nextRequestId++);
  return new Promise((resolve, reject) => {
    pending.set(requestId, { resolve, reject });
    send({ kind: 'request', request_id: requestId, op, params });
  });
}

function receipt(envelope, status, reason = '') {
  send({
    kind: 'receipt',
    envelope_id: envelope.envelope_id,
    status,
    recipient_id: agentId,
    channel_id: envelope.channel_id,
    reason,
  });
}

function post(envelope) {
  return request('post_envelope', { envelope: { sender_id: agentId, ...envelope } });
}

async function channelInfo(channelId) {
  if (!channels.has(channelId)) {
    channels.set(channelId, await request('get_channel', { channel_id: channelId }));
  }
  return channels.get(channelId);
}

async function handle(envelope) {
  const { event_type: type, channel_id: channelId, envelope_id: envelopeId } = envelope;
  if (type === 'ag2.channel.invite') {
    log(`invite to ${envelope.event_data.channel_type} channel ${channelId} from ${envelope.event_data.creator_name}`);
    try {
      await post({
        channel_id: channelId,
        event_type: 'ag2.channel.invite.ack',
        event_data: {},
        causation_id: envelopeId,
      });
      log(`accepted invite ${envelopeId}`);
    } catch (err) {
      // A redelivered invite we answered already: nothing to do but ack it.
      if (!(err instanceof HubError && err.reason === 'no_pending_invite')) throw err;
      log(`invite ${envelopeId} was answered already`);
    }
  } else if (type === 'ag2.channel.opened') {
    log(`channel ${channelId} opened`);
  } else if (type === 'ag2.msg.text' && envelope.sender_id !== agentId) {
    const text = envelope.event_data.text;
    log(`text in ${channelId}: ${JSON.stringify(text)}`);
    const meta = await channelInfo(channelId);
    const me = meta.participants.find((p) => p.agent_id === agentId);
    if (meta.manifest.type !== 'consulting' || !me || me.role !== 'respondent') return;
    // At-least-once delivery: this may be a redelivery of a question already answered.
    const earlier = await request('find_envelope_by_causation', {
      channel_id: channelId,
      sender_id: agentId,
      causation_id: envelopeId,
    });
    if (earlier === null) {
      const reply = `echo: ${text}`;
      await post({
        channel_id: channelId,
        event_type: 'ag2.msg.text',
        event_data: { text: reply },
        causation_id: envelopeId,
      });
      log(`replied ${JSON.stringify(reply)}`);
    } else {
      log(`question ${envelopeId} was answered already (${earlier.envelope_id})`);
    }
    answered.add(channelId);
  } else if (type === 'ag2.channel.closed' || type === 'ag2.channel.expired') {
    log(`channel ${channelId} ${envelope.event_data.state} (${envelope.event_data.reason})`);
  } else {
    log(`${type} in ${channelId}`);
  }
}

function deliver(envelope) {
  const channelId = envelope.channel_id;
  const lane = (lanes.get(channelId) || Promise.resolve()).then(async () => {
    try {
      await handle(envelope);
    } catch (err) {
      log(`could not handle ${envelope.event_type} ${envelope.envelope_id}: ${err.message}`);
      receipt(envelope, 'nack', err.message);
      return;
    }
    receipt(envelope, 'ack');
    const type = envelope.event_type;
    if ((type === 'ag2.channel.closed' || type === 'ag2.channel.expired') && answered.has(channelId)) {
      log('done');
      done = true;
      clearTimeout(timer);
      ws.close(1000, 'done'); // the ack above is sent before the close frame
    }
  });
  lanes.set(channelId, lane);
}

ws.on('message', (data) => {
  let frame;
  try {
    frame = JSON.parse(data.toString());
  } catch (err) {
    log(`unreadable frame: ${err.message}`);
    return;
  }
  switch (frame.kind) {
    case 'response': {
      const waiter = pending.get(frame.request_id);
      if (!waiter) return;
      pending.delete(frame.request_id);
      if (frame.ok) waiter.resolve(frame.result);
      else waiter.reject(new HubError(frame));
      return;
    }
    case 'notify':
      if (frame.recipient_id === agentId) deliver(frame.envelope);
      return;
    case 'welcome':
      if (welcomed) welcomed.resolve(frame);
      return;
    case 'error':
      log(`hub error ${frame.code}: ${frame.message}`);
      if (welcomed) welcomed.reject(new Error(`${frame.code}: ${frame.message}`));
      return;
    case 'ping':
      send({ kind: 'pong' });
      return;
    default:
      return;
  }
});

async function start() {
  const passport = { name, auth };
  const resume = { claimed_capabilities: ['echo'], summary: 'Echoes the question back.' };
  try {
    agentId = (await request('register', { passport, resume })).agent_id;
    log(`registered as ${agentId}`);
  } catch (err) {
    if (!(err instanceof HubError && err.reason === 'name_taken')) throw err;
    // Act as the existing agent again; the hub replays everything it has not acked.
    agentId = await request('find_agent_id', { name });
    const welcome = new Promise((resolve, reject) => {
      welcomed = { resolve, reject };
    });
    send({ kind: 'hello', name, auth_scheme: auth.scheme, auth_claim: auth.claim, since_envelope_id: '' });
    await welcome;
    welcomed = null;
    log(`attached as ${agentId}`);
  }
}

ws.on('open', () => {
  log(`connected to ${url}`);
  start().catch((err) => fail(`could not start: ${err.message}`));
});
ws.on('error', (err) => fail(`connection error: ${err.message}`));
ws.on('close', (code, reason) => {
  if (done) process.exit(0);
  fail(`connection closed (${code} ${reason})`);
});
