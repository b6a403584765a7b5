// The official SDKs against keygate's dialects and native providers
// (SPEC sections 2 and 3a): the Anthropic SDK on /v1/messages backed by an
// Anthropic and by an OpenAI deployment, the OpenAI SDK's responses API
// backed by OpenAI and by Anthropic, chat completions backed by Gemini and
// Azure; then the usage keygate recorded for every pair.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startDemo } from './keygate-demo.mjs';

let kg, anthropic, openai;
// What each model should have recorded: requests and completion tokens
// (the mock answers 12 words of text, or a tool call of 5 tokens).
const expected = {};
const count = (model, completion) => {
  const e = (expected[model] ??= { requests: 0, completion: 0 });
  e.requests++;
  e.completion += completion;
};

before(async () => {
  kg = await startDemo();
  anthropic = new Anthropic({ baseURL: kg.url, apiKey: kg.token, maxRetries: 0 });
  openai = new OpenAI({ baseURL: kg.url + '/v1', apiKey: kg.token, maxRetries: 0 });
});
after(async () => { await kg?.stop(); });

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
};

for (const model of ['claude-3-5-haiku-latest', 'gpt-4o-mini']) {
  test(`anthropic sdk: messages.create on ${model}`, async () => {
    const msg = await anthropic.messages.create({
      model, max_tokens: 100, system: 'be brief',
      messages: [{ role: 'user', content: 'hello from the sdk' }],
    });
    count(model, 12);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.match(msg.content[0].text, /^mock reply hello from the sdk/);
    assert.equal(msg.usage.output_tokens, 12);
    assert.ok(msg.usage.input_tokens > 0);
  });

  test(`anthropic sdk: messages.stream on ${model}`, async () => {
    const stream = anthropic.messages.stream({
      model, max_tokens: 100, messages: [{ role: 'user', content: 'stream to me' }],
    });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    count(model, 12);
    assert.match(text, /^mock reply stream to me/);
    assert.equal(final.content[0].text, text);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 12);
    assert.ok(final.usage.input_tokens > 0, 'input tokens reach the SDK');
  });

  test(`anthropic sdk: tool use on ${model}, plain and streamed`, async () => {
    const params = { model, max_tokens: 100, tools: [weather], messages: [{ role: 'user', content: 'weather in Oslo' }] };
    const msg = await anthropic.messages.create(params);
    count(model, 5);
    const call = msg.content.find((b) => b.type === 'tool_use');
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { query: 'weather in Oslo' });

    const final = await anthropic.messages.stream(params).finalMessage();
    count(model, 5);
    const streamed = final.content.find((b) => b.type === 'tool_use');
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(streamed.input, { query: 'weather in Oslo' });

    // The tool's answer goes back and the model replies in text.
    const reply = await anthropic.messages.create({
      ...params,
      messages: [...params.messages, { role: 'assistant', content: msg.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny' }] }],
    });
    count(model, 12);
    assert.equal(reply.stop_reason, 'end_turn');
    assert.equal(reply.content[0].type, 'text');
  });

  test(`anthropic sdk: errors on ${model} are the SDK's error classes`, async () => {
    const stranger = new Anthropic({ baseURL: kg.url, apiKey: 'kg-not-a-token', maxRetries: 0 });
    await assert.rejects(stranger.messages.create({ model, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && /invalid_api_key/.test(e.message));
    await assert.rejects(anthropic.messages.create({ model: model + '-nope', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Anthropic.NotFoundError && e.error?.error?.type === 'not_found_error');
    await assert.rejects(anthropic.messages.create({ model, max_tokens: -1, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Anthropic.BadRequestError && e.error?.type === 'error');
  });
}

test('anthropic sdk: models.list in Anthropic\'s shape', async () => {
  const ids = [];
  for await (const m of anthropic.models.list()) ids.push(m.id);
  assert.ok(ids.includes('claude-3-5-haiku-latest') && ids.includes('gpt-4o-mini'), ids.join(','));
});

test('anthropic sdk: a bearer token (Claude Code with ANTHROPIC_AUTH_TOKEN) and count_tokens', async () => {
  const bearer = new Anthropic({ baseURL: kg.url, authToken: kg.token, apiKey: null, maxRetries: 0 });
  const msg = await bearer.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
  count('claude-3-5-haiku-latest', 12);
  assert.equal(msg.type, 'message');
  for (const model of ['claude-3-5-haiku-latest', 'gpt-4o-mini']) {
    const n = await anthropic.messages.countTokens({ model, messages: [{ role: 'user', content: 'count these four words' }] });
    assert.ok(n.input_tokens > 0, `count_tokens on ${model}`);
  }
  count('claude-3-5-haiku-latest', 0); // relayed to Anthropic, so recorded (without tokens); the other is counted here
});

for (const model of ['gpt-4o-mini', 'claude-3-5-haiku-latest']) {
  test(`openai sdk: responses.create on ${model}, plain and streamed`, async () => {
    const resp = await openai.responses.create({ model, instructions: 'be brief', input: 'hello responses' });
    count(model, 12);
    assert.equal(resp.object, 'response');
    assert.equal(resp.status, 'completed');
    assert.match(resp.output_text, /^mock reply hello responses/);
    assert.equal(resp.usage.output_tokens, 12);

    const stream = await openai.responses.create({ model, input: 'stream responses', stream: true });
    let text = '', completed;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') completed = ev.response;
    }
    count(model, 12);
    assert.match(text, /^mock reply stream responses/);
    assert.equal(completed.status, 'completed');
    assert.equal(completed.output[0].content[0].text, text);
    assert.equal(completed.usage.output_tokens, 12);
  });

  test(`openai sdk: responses with a function tool on ${model}`, async () => {
    const resp = await openai.responses.create({
      model, input: 'weather in Rome',
      tools: [{ type: 'function', name: 'get_weather', parameters: weather.input_schema, strict: false }],
    });
    count(model, 5);
    const call = resp.output.find((o) => o.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { query: 'weather in Rome' });
  });
}

for (const model of ['gemini-2.0-flash', 'gpt-4o-azure']) {
  test(`openai sdk: chat.completions on ${model}, plain and streamed`, async () => {
    const c = await openai.chat.completions.create({ model, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello chat' }] });
    count(model, 12);
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, model === 'gemini-2.0-flash' ? model : 'gpt-4o-mini');
    assert.match(c.choices[0].message.content, /^mock reply hello chat/);
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.usage.completion_tokens, 12);

    const stream = await openai.chat.completions.create({ model, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream chat' }] });
    let text = '', usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    count(model, 12);
    assert.match(text, /^mock reply stream chat/);
    assert.equal(usage.completion_tokens, 12);
  });

  test(`openai sdk: tool calls on ${model}`, async () => {
    const c = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather in Lima' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather.input_schema } }] });
    count(model, 5);
    const call = c.choices[0].message.tool_calls[0];
    assert.equal(c.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { query: 'weather in Lima' });
  });
}

test('usage is recorded with the right counts for every pair', async () => {
  let rows = [];
  for (let i = 0; i < 50; i++) { // records leave the request path in batches
    const r = await fetch(kg.url + '/api/v1/usage?group_by=model', { headers: { Authorization: 'Bearer ' + kg.admin } });
    rows = (await r.json()).data;
    const done = Object.entries(expected).every(([m, e]) => rows.find((x) => x.group === m)?.requests === e.requests);
    if (done) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  for (const [model, e] of Object.entries(expected)) {
    const row = rows.find((x) => x.group === model);
    assert.ok(row, `no usage for ${model}`);
    assert.equal(row.requests, e.requests, `${model} requests`);
    assert.equal(row.completion_tokens, e.completion, `${model} completion tokens`);
    assert.ok(row.prompt_tokens > 0, `${model} prompt tokens`);
  }
});
