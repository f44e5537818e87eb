// Scheduled prompts and skills through the Node SDK: a task added, run now with cronTrigger (its
// prompt runs in the conversation as a cron_prompt), read back with its run log, deleted; a skill
// enabled and disabled.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectedClient, startServer, until } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test('a scheduled prompt runs in its conversation when triggered, and its run is logged', async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Scheduler' } } });
  const added = await client.cronAdd({
    agent_id: runtime.agent_id,
    conversation_id: runtime.conversation_id,
    name: 'Ping',
    description: 'A test task',
    cron: '0 9 * * 1-5',
    timezone: 'UTC',
    recurring: true,
    prompt: 'Say pong [[reply: pong]]',
  });
  assert.equal(added.task.status, 'active');
  const id = added.task.id;
  const listed = await client.cronList({ agent_id: runtime.agent_id });
  assert.deepEqual(listed.tasks.map((task) => task.id), [id]);

  const finished = until(client, (frame) => frame.type === 'turn_finished');
  const triggered = await client.cronTrigger({ task_id: id });
  assert.deepEqual([triggered.found, triggered.task.fire_count, triggered.task.status], [true, 1, 'active']);
  const frames = await finished;
  const queued = frames.find((frame) => frame.type === 'update_queue' && frame.queue.length > 0);
  assert.deepEqual([queued.queue[0].kind, queued.queue[0].source], ['cron_prompt', 'cron']);
  assert.match(queued.queue[0].content, /^Scheduled task "Ping" is firing\.\nDescription: A test task\n/);

  const runs = await client.cronRuns({ task_id: id });
  assert.deepEqual(
    runs.page.entries.map((entry) => [entry.status, entry.outcome, entry.reason]),
    [['ok', 'queued', 'scheduled_time_matched']],
  );
  const deleted = await client.cronDelete({ task_id: id });
  assert.equal(deleted.found, true);
  const gone = await client.cronGet({ task_id: id });
  assert.deepEqual([gone.found, gone.task], [false, null]);
});

test('skillEnable links a skill directory and skillDisable unlinks it, each followed by skills_updated', async (t) => {
  const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(tmpdir(), 'letta-skill-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const skill = path.join(dir, 'haiku');
  await mkdir(skill);
  await writeFile(path.join(skill, 'SKILL.md'), '---\nname: haiku\ndescription: Write a haiku.\n---\nFive, seven, five.');
  const client = await connectedClient(t, server.url);
  const updated = until(client, (frame) => frame.type === 'skills_updated');
  const enabled = await client.skillEnable({ skill_path: skill });
  assert.deepEqual([enabled.success, enabled.skill_name, enabled.skill_path], [true, 'haiku', skill]);
  await updated;
  const disabled = await client.skillDisable({ name: 'haiku' });
  assert.deepEqual([disabled.success, disabled.name], [true, 'haiku']);
  const missing = await client.skillDisable({ name: 'haiku' });
  assert.deepEqual([missing.success, missing.error], [false, 'Skill not found: haiku']);
});
