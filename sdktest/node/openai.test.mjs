// The official OpenAI Node SDK against a real keygate with the mock
// provider behind it (scripts/sdk-test.sh starts both and sets
// KEYGATE_SDK_INFO). Each test is what an application would notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const info = JSON.parse(readFileSync(process.env.KEYGATE_SDK_INFO, 'utf8'));
const client = (opts = {}) => new OpenAI({ baseURL: info.base_url, apiKey: info.token, maxRetries: 0, ...opts });
const hi = [{ role: 'user', content: 'hello there' }];

test('chat completion, with keygate request id and key id', async () => {
  const { data, response, request_id } = await client().chat.completions.create({ model: info.chat_model, messages: hi }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.ok(data.choices[0].message.content.length > 0);
  assert.ok(data.usage.total_tokens > 0);
  assert.match(request_id, /^req_/);
  assert.equal(response.headers.get('x-request-id'), request_id);
  assert.match(response.headers.get('x-keygate-key'), /^k_[0-9a-f]{16}$/);
  assert.equal(response.headers.get('openai-organization'), null);
});

test('a caller request id is kept', async () => {
  const { request_id } = await client().chat.completions
    .create({ model: info.chat_model, messages: hi }, { headers: { 'X-Request-Id': 'sdk-trace-42' } }).withResponse();
  assert.equal(request_id, 'sdk-trace-42');
});

test('stream without include_usage: no usage chunk reaches the caller', async () => {
  const stream = await client().chat.completions.create({ model: info.chat_model, messages: hi, stream: true });
  let text = '';
  for await (const chunk of stream) {
    assert.ok(chunk.choices.length > 0, 'every chunk has a choice');
    assert.ok(!chunk.usage, 'no usage the caller did not ask for');
    text += chunk.choices[0].delta.content ?? '';
  }
  assert.ok(text.length > 0);
});

test('stream with include_usage ends with the usage chunk', async () => {
  const stream = await client().chat.completions.create({
    model: info.chat_model, messages: hi, stream: true, stream_options: { include_usage: true },
  });
  let last;
  for await (const chunk of stream) last = chunk;
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
});

test('embeddings as floats and as base64', async () => {
  const c = client();
  const floats = await c.embeddings.create({ model: info.embedding_model, input: 'hello', encoding_format: 'float' });
  assert.ok(Array.isArray(floats.data[0].embedding) && typeof floats.data[0].embedding[0] === 'number');
  // The SDK asks for base64 by default and decodes it itself.
  const decoded = await c.embeddings.create({ model: info.embedding_model, input: 'hello' });
  assert.equal(decoded.data[0].embedding.length, floats.data[0].embedding.length);
  const raw = await c.embeddings.create({ model: info.embedding_model, input: ['a', 'b'], encoding_format: 'base64' });
  assert.equal(typeof raw.data[1].embedding, 'string');
});

test('models.list and models.retrieve', async () => {
  const c = client();
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  assert.ok(ids.includes(info.chat_model) && ids.includes(info.embedding_model));
  const m = await c.models.retrieve(info.chat_model);
  assert.equal(m.id, info.chat_model);
  assert.equal(m.object, 'model');
  await assert.rejects(c.models.retrieve('gpt-9'), OpenAI.NotFoundError);
});

const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }];

test('tool calls, plain and streamed', async () => {
  const c = client();
  const r = await c.chat.completions.create({ model: info.chat_model, messages: hi, tools });
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), { query: 'hello there' });
  const s = c.chat.completions.stream({ model: info.chat_model, messages: hi, tools });
  const done = await s.finalChatCompletion();
  assert.equal(done.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(done.choices[0].message.tool_calls[0].function.arguments), { query: 'hello there' });
});

test('error classes', async () => {
  await assert.rejects(client({ apiKey: 'kg-wrong' }).chat.completions.create({ model: info.chat_model, messages: hi }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
  await assert.rejects(client({ apiKey: info.limited_token }).chat.completions.create({ model: info.chat_model, messages: hi }),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.code === 'model_not_allowed');
  await assert.rejects(client().chat.completions.create({ model: 'gpt-9', messages: hi }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client().chat.completions.create({ model: info.chat_model, messages: hi, max_tokens: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_request');
});

test('429 with Retry-After is honoured by the SDK', async () => {
  const started = Date.now();
  await assert.rejects(client({ maxRetries: 1 }).chat.completions.create({ model: info.limited_model, messages: hi }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '1');
  assert.ok(Date.now() - started >= 900, 'the SDK waited the second keygate passed on before retrying');
});

test('abort mid-stream', async () => {
  const ac = new AbortController();
  const stream = await client().chat.completions.create({ model: info.chat_model, messages: hi, stream: true }, { signal: ac.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) {
      chunks++;
      ac.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', `an abort, not ${e}`);
  }
  assert.ok(chunks <= 2, `the stream stops at the abort, got ${chunks} chunks`);
  const after = await client().chat.completions.create({ model: info.chat_model, messages: hi });
  assert.equal(after.object, 'chat.completion');
});

test('OPENAI_ORG_ID in the environment hurts no key', async () => {
  process.env.OPENAI_ORG_ID = 'org-of-someone-else';
  process.env.OPENAI_PROJECT_ID = 'proj-of-someone-else';
  try {
    const c = new OpenAI({ baseURL: info.base_url, apiKey: info.token, maxRetries: 0 });
    for (let i = 0; i < 6; i++) {
      const r = await c.chat.completions.create({ model: info.chat_model, messages: hi });
      assert.equal(r.object, 'chat.completion');
    }
  } finally {
    delete process.env.OPENAI_ORG_ID;
    delete process.env.OPENAI_PROJECT_ID;
  }
  const keys = await (await fetch(info.root + '/api/v1/keys', { headers: { Authorization: 'Bearer ' + info.admin_token } })).json();
  for (const k of keys.data) assert.notEqual(k.status, 'disabled', `key ${k.id} must not be disabled`);
});
