//! Telling people: notifications of incidents, failed rollouts and
//! rollbacks sent to Slack, Discord, webhooks, PagerDuty and local
//! commands.
pub mod message;
pub mod topic;
