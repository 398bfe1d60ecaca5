// Deploy entry: every Cloud Function, exported (and registered) under its name.
export { instanceEvents } from './instance-events';
export { scalingAlerts } from './scaling-alerts';
export { healthSweep, healthSweepActHttp, healthSweepHttp } from './health-sweep';
