//! rollguard's integration tests, one binary: a module per area over one
//! `common` (real sshd, nginx, HAProxy, dockerd, Prometheus, tmux and an
//! SMTP server, each started by the test that needs it, on loopback).
// A fixture that cannot set up fails its test with its reason: unwrapping
// and panicking are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
// Fixtures signal the processes they started and set options on their own
// sockets; `src/` keeps its libc calls in `host`.
#![allow(unsafe_code)]

mod common;

mod agent;
mod agent_rollout;
mod config;
mod console_flows;
mod console_ssh;
mod console_terminal;
mod console_tmux;
mod demo;
mod docker_probe;
mod driver_docker;
mod driver_process;
mod error_codes;
mod events;
mod exec_local;
mod gate;
mod good_release;
mod health;
mod metrics;
mod notify;
mod notify_email;
mod notify_websocket;
mod probe_http;
mod probe_prometheus;
mod probe_secrets;
mod report;
mod rollout_command;
mod rollout_disk;
mod rollout_docker;
mod rollout_pause;
mod rollout_prometheus;
mod rollout_protected;
mod rollout_records;
mod rollout_recover;
mod rollout_rolling;
mod rollout_ssh;
mod rollout_strategies;
mod rollout_surge;
mod secret_store;
mod ssh;
mod ssh_output;
mod ssh_probe;
mod store;
mod store_api;
mod store_location;
mod store_postgres;
mod store_read_only;
mod store_rollout;
mod terminal_output;
mod traffic_haproxy;
mod traffic_nginx;
mod tui_render;
