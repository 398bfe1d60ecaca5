import { stopAllProcesses } from '../../infra-scripts/local/launch/process';

// Google's libraries must never probe a real metadata server from a test.
process.env.METADATA_SERVER_DETECTION = 'none';

// A test file that forgot to stop something (or failed half-way) still leaves nothing running.
afterAll(async () => {
  await stopAllProcesses();
});
