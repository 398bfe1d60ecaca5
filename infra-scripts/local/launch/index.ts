export * from './consul';
export * from './dnsmasq';
export * from './haproxy';
export * from './net';
export * from './process';
export * from './pubsub';
export * from './tools';
