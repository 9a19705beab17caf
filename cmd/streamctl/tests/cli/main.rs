//! streamctl end to end: the real executable against the whole streamhub application
//! in-process, one module per subcommand, plus exit codes and reconnection.

mod auth;
mod batch;
mod chat;
mod edit;
mod feed;
mod files;
mod game;
mod health;
mod logs;
mod sensors;
mod stocks;
mod streamctl;
mod tls;
mod usage;
