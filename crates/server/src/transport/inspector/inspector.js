// The App Server inspector: connects to a server with a token, shows every frame both ways,
// checks each against the protocol's schema, lists agents, conversations and runtimes, answers
// approvals and external tool calls by hand, and sends any command from a form generated from
// the schema. Everything it knows about the protocol comes from the data block the server put
// in the page (the schema bundle and the command table of `schema/`).

const DATA = JSON.parse(document.getElementById('data').textContent);
const DEFINITIONS = DATA.schema.definitions;
const META = DATA.meta;
const BEARER_PREFIX = META.bearer_subprotocol_prefix;
const COMMANDS = new Map(META.commands.map((command) => [command.type, command]));
/** Frames kept, and their text's bytes (UTF-16 units): past either, the oldest go. */
const MAX_FRAMES = 20000;
const MAX_TEXT = 64 * 1024 * 1024;

const $ = (id) => document.getElementById(id);

/** An element with `attributes` (`on…` ones as listeners) and `children` (strings are text). */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'className') element.className = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.flat().filter((child) => child !== undefined && child !== null));
  return element;
}

const pretty = (value) => JSON.stringify(value, null, 2);
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);
const firstSentence = (text) => (text ?? '').split(/\n\n|(?<=\.)\s/)[0];

// ---------------------------------------------------------------------------------------------
// The schema: references, nullable wrappers, tagged unions, and checking a value against it.

/** `schema` with its `$ref`s followed and a lone `allOf` (a described reference) unwrapped. */
function resolve(schema) {
  let current = schema;
  for (;;) {
    if (!isObject(current)) return current;
    if (current.$ref) current = DEFINITIONS[current.$ref.replace('#/definitions/', '')];
    else if (current.allOf?.length === 1 && !current.properties && current.type === undefined) current = current.allOf[0];
    else return current;
  }
}

/** `{ schema, nullable }`: the schema of a value that may also be `null`, without the `null`. */
function withoutNull(schema) {
  const resolved = resolve(schema);
  if (resolved.anyOf?.length === 2) {
    const others = resolved.anyOf.filter((branch) => resolve(branch).type !== 'null');
    if (others.length === 1) return { schema: resolve(others[0]), nullable: true };
  }
  if (Array.isArray(resolved.type) && resolved.type.includes('null')) {
    const types = resolved.type.filter((type) => type !== 'null');
    return { schema: { ...resolved, type: types.length === 1 ? types[0] : types }, nullable: true };
  }
  return { schema: resolved, nullable: false };
}

/** The property every branch of a union fixes with a `const` (`type`, `kind`, …), if any. */
function discriminator(branches) {
  const resolved = branches.map(resolve);
  if (!resolved.every((branch) => isObject(branch?.properties))) return null;
  const fixed = (branch, name) => branch.properties[name] && resolve(branch.properties[name]).const !== undefined;
  return Object.keys(resolved[0].properties).find((name) => resolved.every((branch) => fixed(branch, name))) ?? null;
}

/** The values of a closed list of strings (`enum`, or a union of `const`s), with descriptions. */
function choices(schema) {
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => ({ value }));
  const branches = schema.oneOf ?? schema.anyOf;
  if (branches?.every((branch) => resolve(branch).const !== undefined)) {
    return branches.map((branch) => ({ value: resolve(branch).const, description: resolve(branch).description }));
  }
  return null;
}

function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(type, value) {
  const kind = kindOf(value);
  return [type].flat().some((wanted) => wanted === kind || (wanted === 'number' && kind === 'integer'));
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Checks `value` against `schema`: `report.errors` gets what breaks it, `report.notes` what is
 * allowed but worth knowing (fields the schema does not name, values of open enums and unions
 * this version does not know). The subset of JSON Schema draft 7 the protocol's bundle uses,
 * written here because the page loads nothing from elsewhere, and because a tagged union is
 * best explained by its tag's branch, not by "matches none of 114 alternatives".
 */
function check(schema, value, path, report) {
  if (schema === true || schema === undefined) return;
  if (schema === false) {
    report.errors.push(`${path || '/'}: not allowed`);
    return;
  }
  const s = resolve(schema);
  const at = path || '/';
  if (s.type !== undefined && !typeMatches(s.type, value)) {
    report.errors.push(`${at}: expected ${[s.type].flat().join(' or ')}, got ${kindOf(value)}`);
    return;
  }
  if (s.const !== undefined && !same(s.const, value)) report.errors.push(`${at}: expected ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.some((allowed) => same(allowed, value))) {
    if (s['x-open'] && typeof value === 'string') report.notes.push(`${at}: "${value}" is not a value this version knows (open: kept)`);
    else report.errors.push(`${at}: ${JSON.stringify(value)} is not one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  for (const part of s.allOf ?? []) check(part, value, path, report);
  if (s.anyOf) checkAlternatives(s, s.anyOf, value, path, report, false);
  if (s.oneOf) checkAlternatives(s, s.oneOf, value, path, report, true);
  if (isObject(value)) {
    for (const name of s.required ?? []) {
      if (!Object.hasOwn(value, name)) report.errors.push(`${path}/${name}: required`);
    }
    for (const [name, field] of Object.entries(value)) {
      if (s.properties && Object.hasOwn(s.properties, name)) check(s.properties[name], field, `${path}/${name}`, report);
      else if (s.additionalProperties === false) report.errors.push(`${path}/${name}: not allowed here`);
      else if (isObject(s.additionalProperties)) check(s.additionalProperties, field, `${path}/${name}`, report);
      else if (s.properties && s.additionalProperties === undefined) report.notes.push(`${path}/${name}: not in the schema (ignored)`);
    }
  }
  if (Array.isArray(value)) {
    if (s.items !== undefined) value.forEach((item, index) => check(s.items, item, `${path}/${index}`, report));
    if (s.minItems !== undefined && value.length < s.minItems) report.errors.push(`${at}: fewer than ${s.minItems} items`);
    if (s.maxItems !== undefined && value.length > s.maxItems) report.errors.push(`${at}: more than ${s.maxItems} items`);
  }
  if (typeof value === 'number' && s.minimum !== undefined && value < s.minimum) report.errors.push(`${at}: below ${s.minimum}`);
}

/** `anyOf` (`exactlyOne` false) or `oneOf`: a tagged union is checked against its tag's branch. */
function checkAlternatives(schema, branches, value, path, report, exactlyOne) {
  const tag = isObject(value) ? discriminator(branches) : null;
  if (tag !== null) {
    const branch = branches.find((candidate) => resolve(resolve(candidate).properties[tag]).const === value[tag]);
    if (branch) check(branch, value, path, report);
    else if (!Object.hasOwn(value, tag)) report.errors.push(`${path}/${tag}: required`);
    else if (schema['x-open']) report.notes.push(`${path}/${tag}: "${value[tag]}" is not one this version knows (open: kept)`);
    else report.errors.push(`${path}/${tag}: unknown ${JSON.stringify(value[tag])}`);
    return;
  }
  const attempts = branches.map((branch) => {
    const attempt = { errors: [], notes: [] };
    check(branch, value, path, attempt);
    return attempt;
  });
  const passed = attempts.filter((attempt) => attempt.errors.length === 0);
  if (passed.length === 1 || (passed.length > 1 && !exactlyOne)) {
    report.notes.push(...passed[0].notes);
    return;
  }
  const at = path || '/';
  if (passed.length > 1) {
    report.errors.push(`${at}: matches more than one alternative`);
  } else if (schema['x-open'] && typeof value === 'string' && choices(schema)) {
    report.notes.push(`${at}: "${value}" is not a value this version knows (open: kept)`);
  } else {
    // A value that is not `null` is explained by the branches that are not `null`.
    const candidates = attempts.filter((_, index) => value === null || resolve(branches[index]).type !== 'null');
    const fewest = candidates.reduce((best, attempt) => (attempt.errors.length < best.errors.length ? attempt : best), attempts[0]);
    const named = choices(schema);
    if (named) report.errors.push(`${at}: ${JSON.stringify(value)} is not one of ${named.map((c) => JSON.stringify(c.value)).join(', ')}`);
    else report.errors.push(...fewest.errors);
  }
}

/** The check of a whole frame: received ones are `ServerFrame`s, sent ones `ClientFrame`s. */
function checkFrame(frame, direction) {
  const report = { errors: [], notes: [] };
  check(DEFINITIONS[direction === 'in' ? 'ServerFrame' : 'ClientFrame'], frame, '', report);
  return report;
}

/** A report as a line and its list. */
function renderReport(report, what) {
  const valid = report.errors.length === 0;
  const summary = valid
    ? el('span', { className: 'valid' }, `✓ a valid ${what}`)
    : el('span', { className: 'invalid' }, `✗ not a valid ${what}: ${report.errors.length} problem${report.errors.length > 1 ? 's' : ''}`);
  const items = [
    ...report.errors.map((text) => el('li', { className: 'error' }, text)),
    ...report.notes.map((text) => el('li', { className: 'note' }, text)),
  ];
  return items.length ? [summary, el('ul', {}, items)] : [summary];
}

// ---------------------------------------------------------------------------------------------
// The connection.

const state = {
  socket: null,
  opened: false,
  /** The URL of the last connection: another server's runtimes are not this one's. */
  connectedTo: null,
  /** Request ids made so far. */
  requestCount: 0,
  /** Bytes of the kept frames' text. */
  textSize: 0,
  /** Why the command form cannot make a frame (Send waits until it can, or the JSON is edited). */
  formProblem: null,
  /** Every frame seen: `{ id, direction, at, frame, text, scope, report }`. */
  frames: [],
  nextFrame: 1,
  /** Frames received or sent since the last paint. */
  unpainted: [],
  selectedFrame: null,
  /** Runtimes by `agent_id/conversation_id`: `{ scope, cursor, frames, note }`. */
  runtimes: new Map(),
  selectedRuntime: null,
  agents: [],
  selectedAgent: null,
  conversations: [],
  selectedConversation: null,
  /** What to do with the answer to a request this page made, by `request_id`. */
  answers: new Map(),
  /** Types seen, with how many of each. */
  types: new Map(),
};

const scopeKey = (scope) => `${scope.agent_id ?? '∅'}/${scope.conversation_id}`;
const scopeLabel = (scope) =>
  `${String(scope.agent_id ?? 'no agent').replace(/^agent-/, '').slice(0, 8)}/${String(scope.conversation_id).replace(/^conv-/, '').slice(0, 8)}`;
/** Why an answer to a request says it failed (an `error` frame answers too). */
const failure = (answer) => answer.error ?? answer.message ?? 'failed';

function setStatus(text, tone = '') {
  $('status').value = text;
  $('status').className = tone;
}

function connect() {
  disconnect();
  const url = $('url').value.trim();
  const token = $('token').value.trim();
  let socket;
  try {
    socket = new WebSocket(url, token ? [BEARER_PREFIX + token] : []);
  } catch (error) {
    // A URL that is not ws:// or wss://, or a token a subprotocol cannot carry.
    setStatus(`cannot connect: ${error.message}`, 'bad');
    return;
  }
  if (url !== state.connectedTo) forgetServer();
  state.connectedTo = url;
  state.socket = socket;
  state.opened = false;
  setStatus('connecting');
  socket.onopen = () => {
    state.opened = true;
    setStatus('connected', 'ok');
    setConnected(true);
    request({ type: 'app_server_info' }, (answer) => {
      const capabilities = Object.entries(answer.capabilities ?? {}).filter(([, on]) => on === true).map(([name]) => name);
      $('server').textContent = `${answer.letta_code_version ?? ''} · protocol ${answer.protocol_version ?? '?'} · ${capabilities.join(', ')}`;
      $('server').title = pretty(answer);
    });
    refreshAgents();
    // Runtimes of an earlier connection: subscribe again, resuming after the last event seen.
    for (const runtime of state.runtimes.values()) subscribe(runtime);
  };
  socket.onmessage = (event) => receive(event.data);
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    setConnected(false);
    // A refused handshake (wrong token, origin not allowed) closes without opening.
    if (state.opened) setStatus(`closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`, 'bad');
    else setStatus('refused', 'bad');
  };
}

/** Forgets what belongs to the server of the last connection: its runtimes and questions. */
function forgetServer() {
  state.runtimes.clear();
  state.selectedRuntime = null;
  state.answers.clear();
  state.agents = [];
  state.conversations = [];
  state.selectedAgent = null;
  state.selectedConversation = null;
  for (const card of document.querySelectorAll('#pending .card')) card.remove();
  updatePending();
  renderAgents();
  renderConversations();
  renderRuntimes();
}

function disconnect() {
  const socket = state.socket;
  state.socket = null;
  if (socket) {
    socket.close(1000);
    setStatus('disconnected');
    setConnected(false);
  }
}

function setConnected(connected) {
  for (const id of ['disconnect-button', 'agents-refresh', 'conversations-refresh']) $(id).disabled = !connected;
  updateSay();
  updateSend();
}

/** Sends `frame` and shows it; `false` when there is no connection. */
function send(frame) {
  if (state.socket?.readyState !== WebSocket.OPEN) {
    setStatus('not connected', 'bad');
    return false;
  }
  const text = JSON.stringify(frame);
  state.socket.send(text);
  record('out', frame, text);
  return true;
}

/** A fresh `request_id` for a command, with the prefix the command table gives it. */
function requestId(type) {
  const prefix = COMMANDS.get(type)?.request_id_prefix ?? type.replace(/_/g, '-');
  state.requestCount += 1;
  return `${prefix}-${state.requestCount}`;
}

/** Sends a command made by this page and runs `then` with its answer. */
function request(frame, then) {
  const request_id = requestId(frame.type);
  if (send({ ...frame, request_id }) && then) state.answers.set(request_id, then);
}

function receive(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    frame = { type: '(not JSON)' };
  }
  if (!isObject(frame)) frame = { type: '(not an object)', value: frame };
  record('in', frame, text);
  handle(frame);
}

/** Keeps a frame, checks it, and has it painted. */
function record(direction, frame, text) {
  const scope = isObject(frame.runtime) && typeof frame.runtime.conversation_id === 'string' ? frame.runtime : null;
  const entry = {
    id: state.nextFrame++,
    direction,
    at: new Date(),
    frame,
    text,
    scope,
    report: isObject(frame) ? checkFrame(frame, direction) : { errors: ['not a JSON object'], notes: [] },
  };
  state.frames.push(entry);
  state.textSize += text.length;
  state.types.set(frame.type, (state.types.get(frame.type) ?? 0) + 1);
  if (scope && direction === 'in') {
    const runtime = knownRuntime(scope);
    runtime.frames += 1;
    if (Number.isInteger(frame.conversation_seq)) runtime.cursor = Math.max(runtime.cursor, frame.conversation_seq);
  }
  state.unpainted.push(entry);
  if (state.frames.length > MAX_FRAMES || state.textSize > MAX_TEXT) trim();
  if (state.unpainted.length === 1) requestAnimationFrame(paint);
}

/** Drops the oldest frames until a tenth of each budget is free. */
function trim() {
  let count = 0;
  while (count < state.frames.length && (state.frames.length - count > MAX_FRAMES * 0.9 || state.textSize > MAX_TEXT * 0.9)) {
    const { frame, text } = state.frames[count];
    state.textSize -= text.length;
    const left = state.types.get(frame.type) - 1;
    if (left > 0) state.types.set(frame.type, left);
    else state.types.delete(frame.type);
    count += 1;
  }
  const last = state.frames[count - 1].id;
  state.frames.splice(0, count);
  // A background tab paints nothing (no animation frames): what waits to be painted is trimmed too.
  state.unpainted = state.unpainted.filter((entry) => entry.id > last);
  for (const row of [...$('frames').children]) if (Number(row.dataset.id) <= last) row.remove();
}

/** What the page does with a received frame beyond showing it. */
function handle(frame) {
  const then = state.answers.get(frame.request_id);
  if (then && frame.type !== 'control_request' && frame.type !== 'external_tool_call_request') {
    // `list_memory` answers in several frames; the others in one.
    if (!(frame.type === 'list_memory_response' && frame.done === false)) state.answers.delete(frame.request_id);
    then(frame);
  }
  switch (frame.type) {
    case 'runtime_start_response':
      if (frame.success && frame.runtime) {
        selectRuntime(knownRuntime(frame.runtime, frame.resume));
        if (frame.created?.agent || frame.created?.conversation) refreshAgents();
      }
      break;
    case 'sync_response':
      if (frame.success && frame.runtime) knownRuntime(frame.runtime, frame.resume);
      break;
    case 'control_request':
      addApproval(frame);
      break;
    case 'external_tool_call_request':
      addToolCall(frame);
      break;
    case 'turn_finished':
      if (frame.runtime) dropPendingOf(frame.runtime);
      break;
    default:
  }
}

// ---------------------------------------------------------------------------------------------
// The frame list and the detail view.

function matches(entry) {
  const type = $('filter-type').value;
  const runtime = $('filter-runtime').value;
  const direction = $('filter-direction').value;
  const text = $('filter-text').value;
  return (
    (!type || entry.frame.type === type) &&
    (!runtime || (entry.scope && scopeKey(entry.scope) === runtime)) &&
    (!direction || entry.direction === direction) &&
    (!text || entry.text.includes(text)) &&
    (!$('filter-invalid').checked || entry.report.errors.length > 0)
  );
}

/** A line of the frame list: what it says in a few words. */
function summary(frame) {
  switch (frame.type) {
    case 'stream_delta': {
      const delta = frame.delta ?? {};
      const content = typeof delta.content === 'string' ? delta.content : [delta.content ?? []].flat().map((part) => part?.text ?? '').join('');
      const tool = delta.tool_call?.name ?? delta.tool_calls?.[0]?.name;
      return [delta.message_type, tool, content || delta.reasoning || delta.tool_return].filter(Boolean).join(' · ');
    }
    case 'input':
      return frame.payload?.kind === 'approval_response' ? `approval_response ${frame.payload.decision?.behavior ?? 'error'}` : frame.payload?.kind;
    case 'control_request':
    case 'external_tool_call_request':
      return `${frame.request?.tool_name ?? frame.tool_name} ${JSON.stringify(frame.request?.input ?? frame.input ?? {})}`;
    case 'turn_finished':
      return frame.stop_reason;
    case 'error':
      return `${frame.code}: ${frame.message}`;
    default: {
      if (frame.success === false || frame.accepted === false) return `failed: ${frame.error ?? ''}`;
      // Its own scalar fields, and those of its objects one level down.
      const said = Object.entries(frame)
        .filter(([name, value]) => !ENVELOPE.has(name) && value !== null)
        .flatMap(([name, value]) => (isObject(value) ? Object.entries(value).map(([inner, v]) => [`${name}.${inner}`, v]) : [[name, value]]))
        .filter(([, value]) => value !== null && typeof value !== 'object')
        .slice(0, 3)
        .map(([name, value]) => `${name}: ${value}`);
      return said.length ? said.join(' · ') : (frame.request_id ?? '');
    }
  }
}

/** Fields every frame of a kind carries, which say nothing about this one. */
const ENVELOPE = new Set(['type', 'request_id', 'runtime', 'event_seq', 'emitted_at', 'idempotency_key', 'conversation_seq', 'success', 'agent_id', 'conversation_id']);

/** A frame's row; a frame too odd to sum up still gets one. */
function row(entry) {
  try {
    return rowOf(entry);
  } catch (error) {
    return el(
      'button',
      { type: 'button', role: 'listitem', className: 'frame invalid', 'data-id': entry.id, onclick: () => selectFrame(entry.id) },
      el('span', { className: 'seq' }),
      el('span', { className: 'time' }),
      el('span', { className: `dir ${entry.direction}` }, entry.direction === 'in' ? '↓' : '↑'),
      el('span', { className: 'type' }, String(entry.frame.type)),
      el('span', { className: 'scope' }),
      el('span', { className: 'summary' }, `(cannot show: ${error.message})`),
    );
  }
}

function rowOf(entry) {
  const { frame } = entry;
  const seq = entry.direction === 'in' && Number.isInteger(frame.event_seq) ? frame.event_seq : '';
  const time = entry.at.toTimeString().slice(0, 8) + `.${String(entry.at.getMilliseconds()).padStart(3, '0')}`;
  return el(
    'button',
    {
      type: 'button',
      role: 'listitem',
      className: `frame ${entry.report.errors.length ? 'invalid' : ''} ${state.selectedFrame === entry.id ? 'selected' : ''}`,
      'data-id': entry.id,
      'data-type': frame.type,
      onclick: () => selectFrame(entry.id),
    },
    el('span', { className: 'seq' }, String(seq)),
    el('span', { className: 'time' }, time),
    el('span', { className: `dir ${entry.direction}`, title: entry.direction === 'in' ? 'received' : 'sent' }, entry.direction === 'in' ? '↓' : '↑'),
    el('span', { className: 'type' }, String(frame.type)),
    el('span', { className: 'scope' }, entry.scope ? scopeLabel(entry.scope) : ''),
    el('span', { className: 'summary' }, String(summary(frame) ?? '')),
  );
}

/** Adds the rows of the frames since the last paint, following the end of the list. */
function paint() {
  const list = $('frames');
  const following = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
  const waiting = state.unpainted;
  state.unpainted = [];
  const rows = waiting.filter(matches).map(row);
  list.append(...rows);
  if (following) list.scrollTop = list.scrollHeight;
  renderFilters();
  renderRuntimes();
}

/** Shows the frame list again, for new filters. */
function repaint() {
  state.unpainted = [];
  $('frames').replaceChildren(...state.frames.filter(matches).map(row));
  renderFilters();
}

function renderFilters() {
  const select = $('filter-type');
  const chosen = select.value;
  const types = [...state.types.keys()].sort();
  if (select.options.length !== types.length + 1) {
    select.replaceChildren(el('option', { value: '' }, 'every type'), ...types.map((type) => el('option', { value: type }, type)));
    select.value = chosen;
  }
  for (const option of select.options) if (option.value) option.textContent = `${option.value} (${state.types.get(option.value)})`;
  const runtimes = $('filter-runtime');
  if (runtimes.options.length !== state.runtimes.size + 1) {
    const keep = runtimes.value;
    runtimes.replaceChildren(
      el('option', { value: '' }, 'every runtime'),
      ...[...state.runtimes.values()].map((runtime) => el('option', { value: scopeKey(runtime.scope) }, scopeLabel(runtime.scope))),
    );
    runtimes.value = keep;
  }
  const invalid = state.frames.filter((entry) => entry.report.errors.length > 0).length;
  $('frame-count').textContent = `${state.frames.length} frames${invalid ? `, ${invalid} invalid` : ''}`;
}

function selectFrame(id) {
  state.selectedFrame = id;
  for (const element of $('frames').querySelectorAll('.frame.selected')) element.classList.remove('selected');
  $('frames').querySelector(`[data-id="${id}"]`)?.classList.add('selected');
  const entry = state.frames.find((candidate) => candidate.id === id);
  if (!entry) return;
  const { frame } = entry;
  const facts = [
    entry.direction === 'in' ? 'received' : 'sent',
    entry.at.toISOString(),
    Number.isInteger(frame.event_seq) ? `event_seq ${frame.event_seq}` : null,
    Number.isInteger(frame.conversation_seq) ? `conversation_seq ${frame.conversation_seq}` : null,
    entry.scope ? scopeKey(entry.scope) : null,
    `${entry.text.length} bytes`,
  ];
  const what = `${entry.direction === 'in' ? 'ServerFrame' : 'ClientFrame'} (${frame.type})`;
  $('detail').replaceChildren(
    ...[
      el('h3', {}, String(frame.type)),
      el('div', { className: 'meta' }, facts.filter(Boolean).join(' · ')),
      el('div', { className: 'check', id: 'detail-check' }, renderReport(entry.report, what)),
      entry.direction === 'out' ? el('button', { type: 'button', onclick: () => editFrame(frame) }, 'edit and send again') : null,
      el('pre', { id: 'detail-json' }, pretty(frame)),
    ].filter(Boolean),
  );
}

for (const id of ['filter-type', 'filter-runtime', 'filter-direction', 'filter-invalid']) $(id).addEventListener('change', repaint);
$('filter-text').addEventListener('input', repaint);
$('filters').addEventListener('submit', (event) => event.preventDefault());
// The frames shown, a record a line as `letta-app-server-tools validate` reads them: who sent
// it (`out` is this page, the client), when, and its text as it went over the wire.
$('save').addEventListener('click', () => {
  const lines = state.frames
    .filter(matches)
    .map((entry) => JSON.stringify({ dir: entry.direction, at: entry.at.toISOString(), raw: entry.text }));
  const file = new Blob(lines.map((line) => `${line}\n`), { type: 'application/x-ndjson' });
  const link = el('a', { href: URL.createObjectURL(file), download: `frames-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
});

$('clear').addEventListener('click', () => {
  state.frames = [];
  state.textSize = 0;
  state.types.clear();
  state.selectedFrame = null;
  repaint();
  $('detail').replaceChildren(el('p', { className: 'empty' }, 'Select a frame to see it whole, checked against the schema, or a conversation\'s history.'));
});

// ---------------------------------------------------------------------------------------------
// Agents, conversations, runtimes and history.

function refreshAgents() {
  request({ type: 'agent_list', query: { limit: 100 } }, (answer) => {
    state.agents = answer.agents ?? [];
    renderAgents(answer.success === false || answer.type === 'error' ? failure(answer) : null);
  });
}

function renderAgents(problem = null) {
  $('agents').replaceChildren(
    ...(problem ? [el('li', { className: 'empty' }, problem)] : state.agents.length ? [] : [el('li', { className: 'empty' }, 'no agents')]),
    ...state.agents.map((agent) =>
      el(
        'li',
        { className: agent.id === state.selectedAgent ? 'selected' : '', title: agent.id, onclick: () => selectAgent(agent.id) },
        agent.name,
        el('small', {}, agent.id),
      ),
    ),
  );
}

function selectAgent(id) {
  state.selectedAgent = id;
  state.selectedConversation = null;
  renderAgents();
  refreshConversations();
  prefillCommand();
}

function refreshConversations() {
  if (!state.selectedAgent) return;
  const agent_id = state.selectedAgent;
  request({ type: 'conversation_list', query: { agent_id, limit: 100 } }, (answer) => {
    if (state.selectedAgent !== agent_id) return;
    state.conversations = [{ id: 'default', agent_id, summary: "the agent's default conversation" }, ...(answer.conversations ?? [])];
    renderConversations();
  });
}

function renderConversations() {
  $('conversations').replaceChildren(
    ...state.conversations.map((conversation) => {
      const scope = { agent_id: conversation.agent_id, conversation_id: conversation.id };
      const selected = conversation.id === state.selectedConversation;
      return el(
        'li',
        { className: selected ? 'selected' : '', title: conversation.id, onclick: () => selectConversation(conversation.id) },
        conversation.summary || conversation.id,
        el('small', {}, conversation.id),
        selected
          ? el(
              'div',
              { className: 'actions' },
              el('button', { type: 'button', onclick: () => startRuntime(scope) }, 'start runtime'),
              el('button', { type: 'button', onclick: () => loadHistory(scope) }, 'history'),
            )
          : null,
      );
    }),
  );
}

function selectConversation(id) {
  state.selectedConversation = id;
  renderConversations();
  prefillCommand();
}

/** Starts a runtime for `scope`, numbering its events so the page can resume after a reconnect. */
function startRuntime(scope) {
  request({ type: 'runtime_start', agent_id: scope.agent_id, conversation_id: scope.conversation_id, resume_after: 0 });
}

/** Subscribes this connection to `runtime` again, resuming after its last numbered event. */
function subscribe(runtime) {
  const frame = { type: 'sync', runtime: runtime.scope };
  if (runtime.cursor > 0) frame.resume_after = runtime.cursor;
  request(frame);
}

/** The runtime of `scope`, known from now on; `resume` (from a subscription's answer) notes how it went. */
function knownRuntime(scope, resume) {
  const key = scopeKey(scope);
  let runtime = state.runtimes.get(key);
  if (!runtime) {
    runtime = { scope: { agent_id: scope.agent_id, conversation_id: scope.conversation_id }, cursor: 0, frames: 0, note: '' };
    state.runtimes.set(key, runtime);
  }
  if (resume) {
    runtime.note = resume.resumed ? `resumed after ${resume.last_seq}` : `replayed (from ${resume.last_seq})`;
    runtime.cursor = Math.max(runtime.cursor, resume.last_seq);
  }
  return runtime;
}

/** The runtimes list: rebuilt only when runtimes come or the selection moves (a list rebuilt
 * under the pointer eats clicks); their counts are updated in place. */
function renderRuntimes() {
  const list = $('runtimes');
  const signature = [...state.runtimes.keys(), state.selectedRuntime].join('\n');
  if (list.dataset.signature !== signature) {
    list.dataset.signature = signature;
    const items = [...state.runtimes.entries()].map(([key, runtime]) => {
      const selected = key === state.selectedRuntime;
      return el(
        'li',
        { className: selected ? 'selected' : '', title: key, 'data-key': key, onclick: () => selectRuntime(runtime) },
        scopeLabel(runtime.scope),
        el('small'),
        selected
          ? el(
              'div',
              { className: 'actions' },
              el('button', { type: 'button', title: 'sync, resuming after the last numbered event', onclick: () => subscribe(runtime) }, 'sync'),
              el('button', { type: 'button', onclick: () => loadHistory(runtime.scope) }, 'history'),
            )
          : null,
      );
    });
    list.replaceChildren(...(items.length ? items : [el('li', { className: 'empty' }, 'none yet')]));
  }
  for (const item of list.querySelectorAll('li[data-key]')) {
    const runtime = state.runtimes.get(item.dataset.key);
    const facts = [`${runtime.frames} frames`, runtime.cursor ? `seq ${runtime.cursor}` : null, runtime.note || null];
    item.querySelector('small').textContent = facts.filter(Boolean).join(' · ');
  }
}

function selectRuntime(runtime) {
  state.selectedRuntime = scopeKey(runtime.scope);
  if (runtime.scope.agent_id && runtime.scope.agent_id !== state.selectedAgent) {
    state.selectedAgent = runtime.scope.agent_id;
    renderAgents();
    refreshConversations();
  }
  state.selectedConversation = runtime.scope.conversation_id;
  renderConversations();
  renderRuntimes();
  updateSay();
  prefillCommand();
}

function selectedScope() {
  return state.runtimes.get(state.selectedRuntime)?.scope ?? null;
}

/** Shows the newest 50 messages of `scope`'s conversation where a frame's detail goes. */
function loadHistory(scope) {
  const query = { limit: 50, order: 'desc' };
  if (scope.conversation_id === 'default') query.agent_id = scope.agent_id;
  request({ type: 'conversation_messages_list', conversation_id: scope.conversation_id, query }, (answer) => {
    const messages = [...(answer.messages ?? [])].reverse();
    state.selectedFrame = null;
    $('detail').replaceChildren(
      el('h3', {}, `History of ${scope.conversation_id}`),
      el('div', { className: 'meta' }, `${messages.length} newest messages${answer.has_more ? ' (older ones not shown)' : ''}`),
      el(
        'ol',
        { id: 'messages' },
        ...(answer.success ? [] : [el('li', { className: 'error' }, failure(answer))]),
        ...messages.map((message) =>
          el('li', { 'data-type': message.message_type }, el('span', { className: 'kind' }, `${message.message_type} · ${message.date}`), messageText(message)),
        ),
      ),
    );
  });
}

/** The readable part of a history message. */
function messageText(message) {
  const content = message.content ?? message.reasoning ?? message.tool_return;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => part.text ?? `[${part.type}]`).join('');
  const call = message.tool_call ?? message.tool_calls?.[0];
  if (call) return `${call.name}(${call.arguments ?? ''})`;
  return '';
}

// ---------------------------------------------------------------------------------------------
// Approvals and external tool calls, answered by hand.

function updatePending() {
  $('pending-empty').hidden = $('approvals').children.length + $('tool-calls').children.length > 0;
}

function addApproval(frame) {
  const { request_id, request: question = {} } = frame;
  if (document.querySelector(`[data-approval="${CSS.escape(request_id)}"]`)) return;
  const reason = el('input', { 'aria-label': 'Reason for denying', value: 'Denied from the inspector' });
  // "Yes, and don't ask again…": rules the server keeps when the call is allowed with them.
  const suggestions = (question.permission_suggestions ?? []).map((suggestion) => ({
    id: suggestion.id,
    box: el('input', { type: 'checkbox', value: suggestion.id }),
    text: suggestion.text ?? suggestion.id,
  }));
  const allow = () => {
    const chosen = suggestions.filter((suggestion) => suggestion.box.checked).map((suggestion) => suggestion.id);
    answer(chosen.length ? { behavior: 'allow', selected_permission_suggestion_ids: chosen } : { behavior: 'allow' });
  };
  const answer = (decision) => {
    const payload = { kind: 'approval_response', request_id, decision };
    if (send({ type: 'input', request_id: requestId('input'), runtime: frame.runtime, payload })) {
      card.remove();
      updatePending();
    }
  };
  const card = el(
    'div',
    { className: 'card approval', 'data-approval': request_id, 'data-scope': frame.runtime ? scopeKey(frame.runtime) : '' },
    el('strong', {}, `${question.tool_name} wants to run`),
    el('pre', {}, pretty(question.input ?? {})),
    ...(question.diffs ?? []).map((diff) => el('pre', { className: 'diff' }, diffText(diff))),
    ...suggestions.map((suggestion) => el('label', { className: 'suggestion' }, suggestion.box, ` ${suggestion.text}`)),
    el(
      'div',
      { className: 'row' },
      el('button', { type: 'button', className: 'primary', onclick: allow }, 'Allow'),
      reason,
      el('button', { type: 'button', onclick: () => answer({ behavior: 'deny', message: reason.value || 'Denied' }) }, 'Deny'),
    ),
  );
  $('approvals').append(card);
  updatePending();
}

/** A file-editing tool's preview as a unified diff (or why there is none). */
function diffText(diff) {
  if (!Array.isArray(diff.hunks)) return `${diff.fileName}: ${diff.reason ?? diff.mode}`;
  const mark = { add: '+', remove: '-' };
  const hunks = diff.hunks.map((hunk) => [
    `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`,
    ...hunk.lines.map((line) => `${mark[line.type] ?? ' '}${line.content}`),
  ]);
  return [`--- ${diff.fileName}`, ...hunks.flat()].join('\n');
}

function addToolCall(frame) {
  const { request_id } = frame;
  if (document.querySelector(`[data-tool-call="${CSS.escape(request_id)}"]`)) return;
  const output = el('textarea', { 'aria-label': 'Result', rows: 3, placeholder: 'what the tool returns (text)' });
  const reply = (answer) => {
    if (send({ type: 'external_tool_call_response', request_id, ...answer })) {
      card.remove();
      updatePending();
    }
  };
  const card = el(
    'div',
    { className: 'card tool-call', 'data-tool-call': request_id, 'data-scope': frame.runtime ? scopeKey(frame.runtime) : '' },
    el('strong', {}, `external tool ${frame.tool_name}`),
    el('pre', {}, pretty(frame.input ?? {})),
    output,
    el(
      'div',
      { className: 'row' },
      el('button', { type: 'button', className: 'primary', onclick: () => reply({ result: { content: [{ type: 'text', text: output.value }] } }) }, 'Return result'),
      el('button', { type: 'button', onclick: () => reply({ error: output.value || 'failed' }) }, 'Fail'),
    ),
  );
  $('tool-calls').append(card);
  updatePending();
}

/** A finished turn asks nothing any more: its cards go. */
function dropPendingOf(scope) {
  const key = scopeKey(scope);
  for (const card of document.querySelectorAll('#pending .card')) if (card.dataset.scope === key) card.remove();
  updatePending();
}

// ---------------------------------------------------------------------------------------------
// Sending: a message to the selected runtime, or any command from a form made from its schema.

function updateSay() {
  const ready = Boolean(state.socket && selectedScope());
  $('say-text').disabled = !ready;
  $('say-button').disabled = !ready;
  $('say-text').placeholder = ready ? `a message to ${scopeLabel(selectedScope())}` : 'start or select a runtime to send it messages';
}

$('say').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('say-text').value;
  const runtime = selectedScope();
  if (!text || !runtime) return;
  request({ type: 'input', runtime, payload: { kind: 'create_message', messages: [{ role: 'user', content: text }] } });
  $('say-text').value = '';
});

/** The `ClientFrame` branches, in the command table's order, then the rest. */
const CLIENT_FRAMES = DEFINITIONS.ClientFrame.oneOf
  .map(resolve)
  .map((branch) => ({ type: resolve(branch.properties.type).const, schema: branch }))
  .sort((a, b) => (COMMANDS.has(b.type) - COMMANDS.has(a.type)) || 0);

/**
 * A form field for `schema` at `path` (`payload.messages`): `{ element, read }`, where `read()`
 * gives `{ present, value }` or throws a message. Strings, numbers, booleans and closed lists
 * get inputs; objects with named fields a fieldset; tagged unions a choice of branch; anything
 * else (arrays, free objects, other unions) a JSON text area.
 */
function field(schema, path, required, prefill) {
  const { schema: s, nullable } = withoutNull(schema);
  const name = path.at(-1);
  const dotted = path.join('.');
  const label = (control) => {
    const description = resolve(schema).description ?? s.description;
    return el(
      'div',
      { className: 'field' },
      el('label', { className: required && !nullable ? 'required' : '', for: `f-${dotted}`, title: description }, name),
      control,
      description ? el('small', {}, firstSentence(description)) : null,
    );
  };
  if (s.const !== undefined) return { element: null, read: () => ({ present: true, value: s.const }) };
  const listed = choices(s);
  if (listed) {
    const select = el(
      'select',
      { id: `f-${dotted}`, name: dotted },
      el('option', { value: '' }, required ? '(choose)' : '(omit)'),
      listed.map((choice) => el('option', { value: JSON.stringify(choice.value), title: choice.description }, String(choice.value))),
    );
    if (prefill !== undefined) select.value = JSON.stringify(prefill);
    return { element: label(select), read: () => (select.value ? { present: true, value: JSON.parse(select.value) } : missing(dotted, required)) };
  }
  const type = [s.type].flat()[0];
  if (['string', 'integer', 'number'].includes(type) && !Array.isArray(s.type)) {
    const input = el('input', { id: `f-${dotted}`, name: dotted, type: type === 'string' ? 'text' : 'number', spellcheck: 'false' });
    if (prefill !== undefined) input.value = String(prefill);
    const read = () => {
      if (input.value === '') return missing(dotted, required);
      if (type === 'string') return { present: true, value: input.value };
      const number = Number(input.value);
      if (Number.isNaN(number)) throw new Error(`${dotted}: not a number`);
      return { present: true, value: number };
    };
    return { element: label(input), read };
  }
  if (type === 'boolean' && !Array.isArray(s.type)) {
    const select = el('select', { id: `f-${dotted}`, name: dotted }, el('option', { value: '' }, required ? '(choose)' : '(omit)'), el('option', {}, 'true'), el('option', {}, 'false'));
    if (prefill !== undefined) select.value = String(prefill);
    return { element: label(select), read: () => (select.value ? { present: true, value: select.value === 'true' } : missing(dotted, required)) };
  }
  const branches = s.oneOf ?? s.anyOf;
  const tag = branches ? discriminator(branches) : null;
  if (tag) return unionField(s, branches, tag, path, required, prefill);
  if (s.properties && type === 'object' && s.additionalProperties !== true) return objectField(s, path, required, prefill);
  const area = el('textarea', { id: `f-${dotted}`, name: dotted, rows: 2, spellcheck: 'false', placeholder: `JSON (${describeType(s)})` });
  if (prefill !== undefined) area.value = JSON.stringify(prefill);
  const read = () => {
    if (area.value.trim() === '') return missing(dotted, required);
    try {
      return { present: true, value: JSON.parse(area.value) };
    } catch (error) {
      throw new Error(`${dotted}: not JSON (${error.message})`);
    }
  };
  return { element: label(area), read };
}

function missing(dotted, required) {
  if (required) throw new Error(`${dotted} is required`);
  return { present: false };
}

function describeType(schema) {
  if (schema.type) return [schema.type].flat().join(' or ');
  if (schema.anyOf || schema.oneOf) return 'one of several shapes';
  return 'any';
}

/** An object with named fields: present when any of its fields is. */
function objectField(schema, path, required, prefill = {}) {
  const fields = Object.entries(schema.properties).map(([name, property]) => ({
    name,
    ...field(property, [...path, name], (schema.required ?? []).includes(name), prefill?.[name]),
  }));
  const element = path.length
    ? el('fieldset', {}, el('legend', { title: schema.description }, path.at(-1)), fields.map((f) => f.element))
    : el('div', {}, fields.map((f) => f.element));
  const read = () => {
    const value = {};
    const problems = [];
    for (const f of fields) {
      try {
        const got = f.read();
        if (got.present) value[f.name] = got.value;
      } catch (error) {
        problems.push(error.message);
      }
    }
    const given = fields.some((f) => f.element && f.name in value);
    if (!given && !required) return { present: false };
    if (problems.length) throw new Error(problems.join('; '));
    return { present: true, value };
  };
  return { element, read };
}

/** A tagged union: the branch is chosen by its tag, then filled in as an object. */
function unionField(schema, branches, tag, path, required, prefill) {
  const dotted = path.join('.');
  const byTag = new Map(branches.map((branch) => [resolve(resolve(branch).properties[tag]).const, resolve(branch)]));
  const select = el(
    'select',
    { id: `f-${dotted}.${tag}`, name: `${dotted}.${tag}`, 'aria-label': `${dotted} ${tag}` },
    el('option', { value: '' }, required ? '(choose)' : '(omit)'),
    [...byTag.entries()].map(([value, branch]) => el('option', { value, title: branch.description }, value)),
  );
  const body = el('div', {});
  let current = null;
  const choose = (value, values) => {
    current = value ? objectField(byTag.get(value), path, true, values) : null;
    body.replaceChildren(current ? current.element : '');
  };
  select.addEventListener('change', () => choose(select.value));
  if (prefill?.[tag] && byTag.has(prefill[tag])) {
    select.value = prefill[tag];
    choose(prefill[tag], prefill);
  }
  const element = el('fieldset', {}, el('legend', { title: schema.description }, `${path.at(-1)} (${tag})`), select, body);
  return { element, read: () => (current ? current.read() : missing(dotted, required)) };
}

let form = null;

function chooseCommand(type, values) {
  const chosen = CLIENT_FRAMES.find((candidate) => candidate.type === type) ?? CLIENT_FRAMES[0];
  $('command').value = chosen.type;
  $('command-doc').textContent = chosen.schema.description ?? '';
  form = objectField(chosen.schema, [], true, values ?? contextFor(chosen));
  $('command-form').replaceChildren(form.element);
  writeJson();
}

/** What the page can fill in for a command: a fresh request id, and the selected scope. */
function contextFor(chosen) {
  const properties = chosen.schema.properties;
  const values = {};
  if (properties.request_id) values.request_id = requestId(chosen.type);
  const runtime = selectedScope();
  const agent_id = runtime?.agent_id ?? state.selectedAgent;
  const conversation_id = runtime?.conversation_id ?? state.selectedConversation;
  if (properties.runtime && (runtime || (agent_id && conversation_id))) values.runtime = { agent_id, conversation_id };
  if (properties.agent_id && agent_id) values.agent_id = agent_id;
  if (properties.conversation_id && conversation_id) values.conversation_id = conversation_id;
  return values;
}

/** Fills the command form in again for the current selection, keeping the command. */
function prefillCommand() {
  chooseCommand($('command').value);
}

/** The frame the form describes, into the JSON text area, with its check. */
function writeJson() {
  try {
    $('command-json').value = pretty(form.read().value);
    state.formProblem = null;
  } catch (error) {
    // The JSON below is the last frame the form made, not this one: nothing goes until the form
    // reads again, or the JSON is edited by hand.
    state.formProblem = error.message;
    $('command-check').replaceChildren(el('span', { className: 'invalid' }, error.message));
    updateSend();
    return;
  }
  updateSend();
  checkJson();
}

/** The frame in the JSON text area, checked; `undefined` when it is not JSON. */
function checkJson() {
  let frame;
  try {
    frame = JSON.parse($('command-json').value);
  } catch (error) {
    $('command-check').replaceChildren(el('span', { className: 'invalid' }, `not JSON: ${error.message}`));
    return undefined;
  }
  $('command-check').replaceChildren(...renderReport(checkFrame(frame, 'out'), 'ClientFrame'));
  return frame;
}

function updateSend() {
  $('send').disabled = !state.socket || state.formProblem !== null;
}

/** Puts `frame` in the composer to be changed and sent. */
function editFrame(frame) {
  const known = CLIENT_FRAMES.some((candidate) => candidate.type === frame.type);
  chooseCommand(known ? frame.type : CLIENT_FRAMES[0].type, known ? { ...frame, request_id: frame.request_id && requestId(frame.type) } : undefined);
  if (!known) $('command-json').value = pretty(frame);
  checkJson();
}

$('command').replaceChildren(...CLIENT_FRAMES.map(({ type, schema }) => el('option', { value: type, title: schema.description }, type)));
$('command').addEventListener('change', () => chooseCommand($('command').value));
$('command-form').addEventListener('input', writeJson);
$('command-form').addEventListener('change', writeJson);
$('command-form').addEventListener('submit', (event) => event.preventDefault());
$('command-json').addEventListener('input', () => {
  state.formProblem = null;
  updateSend();
  checkJson();
});
$('send').addEventListener('click', () => {
  const frame = checkJson();
  if (frame === undefined || !send(frame)) return;
  // The next one gets a request id of its own.
  if (isObject(frame) && typeof frame.request_id === 'string') {
    const values = { ...frame, request_id: requestId(frame.type) };
    if (CLIENT_FRAMES.some((candidate) => candidate.type === frame.type)) chooseCommand(frame.type, values);
  }
});

// ---------------------------------------------------------------------------------------------
// Start: the server's address, and the token the address's fragment may carry.

{
  const secure = location.protocol === 'https:';
  const path = document.querySelector('meta[name="ws-path"]').content || '/ws';
  $('url').value = `${secure ? 'wss' : 'ws'}://${location.host}${path}`;
  const fragment = new URLSearchParams(location.hash.slice(1));
  // The token leaves the address bar (and the history) as soon as it is read.
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  $('connect').addEventListener('submit', (event) => {
    event.preventDefault();
    connect();
  });
  $('disconnect-button').addEventListener('click', disconnect);
  $('agents-refresh').addEventListener('click', refreshAgents);
  $('conversations-refresh').addEventListener('click', refreshConversations);
  chooseCommand('runtime_start');
  renderRuntimes();
  updatePending();
  if (fragment.get('token')) {
    $('token').value = fragment.get('token');
    connect();
  }
}
