// Runs one execution of an ASL definition on aws-local-stepfunctions and prints what happened.
//
// stdin:  {definition, input, lambdaEndpoint, retryIntervalMs?}
// stdout: {status: "SUCCEEDED", output, tasks, events} or {status: "FAILED", error, cause, tasks, events}
//
// Every Task state whose Resource is the Lambda integration (arn:aws:states:::lambda:invoke) is
// answered by invoking its FunctionName on `lambdaEndpoint` with the AWS SDK, as Step Functions
// does: the result is {ExecutedVersion, Payload, StatusCode}; a function error becomes an error
// named after its errorType (what Retry/Catch ErrorEquals match), with the error payload as Cause.
// `tasks` lists each payload a Task sent; `events` is the interpreter's execution event log.

// aws-local-stepfunctions 3.0.0 declares Node >= 22; the one newer API it uses is this.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { StateMachine, ExecutionError } = await import('aws-local-stepfunctions');
const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');

const LAMBDA_INTEGRATION = 'arn:aws:states:::lambda:invoke';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function lambdaTaskNames(definition, found = []) {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type === 'Task' && state.Resource === LAMBDA_INTEGRATION) found.push(name);
    for (const nested of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) {
      if (nested) lambdaTaskNames(nested, found);
    }
  }
  return found;
}

function namedError(name, cause) {
  const error = new Error(cause);
  error.name = name;
  return error;
}

const request = await readStdin();
const client = new LambdaClient({
  endpoint: request.lambdaEndpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  maxAttempts: 1, // the state machine's Retry decides, as in Step Functions
});
const tasks = [];

function invoker(stateName) {
  return async (parameters) => {
    tasks.push({ state: stateName, parameters });
    let reply;
    try {
      reply = await client.send(
        new InvokeCommand({
          FunctionName: parameters.FunctionName,
          Payload: Buffer.from(JSON.stringify(parameters.Payload ?? {})),
        }),
      );
    } catch (error) {
      // What Step Functions reports when the Lambda service itself fails the call.
      const service = error?.$metadata?.httpStatusCode !== undefined;
      throw namedError(service ? `Lambda.${error.name}` : 'Lambda.SdkClientException', String(error?.message ?? error));
    }
    const text = reply.Payload ? Buffer.from(reply.Payload).toString('utf8') : 'null';
    if (reply.FunctionError) {
      const body = JSON.parse(text);
      throw namedError(body.errorType ?? 'Lambda.Unknown', text);
    }
    return { ExecutedVersion: reply.ExecutedVersion ?? '$LATEST', Payload: JSON.parse(text), StatusCode: reply.StatusCode };
  };
}

const taskResourceLocalHandlers = Object.fromEntries(lambdaTaskNames(request.definition).map((n) => [n, invoker(n)]));
const retryIntervalOverrides =
  request.retryIntervalMs === undefined || request.retryIntervalMs === null
    ? undefined
    : Object.fromEntries(Object.keys(taskResourceLocalHandlers).map((n) => [n, request.retryIntervalMs]));

const machine = new StateMachine(request.definition);
const execution = machine.run(request.input, { overrides: { taskResourceLocalHandlers, retryIntervalOverrides } });
const events = [];
const collected = (async () => {
  for await (const event of execution.eventLogs) events.push(event);
})();

let outcome;
try {
  outcome = { status: 'SUCCEEDED', output: await execution.result };
} catch (error) {
  if (!(error instanceof ExecutionError)) throw error;
  const failure = error.cause ?? error;
  outcome = { status: 'FAILED', error: failure.name, cause: failure.message };
}
await collected;
process.stdout.write(JSON.stringify({ ...outcome, tasks, events }));
