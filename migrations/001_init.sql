-- wechat-ai-bridge schema 001: customers, identities, the message log, settlements waiting for their row, failed
-- replies. Written for MySQL 8.0+ and MariaDB 10.6+ (the tests run it on MariaDB 10.11): no JSON columns, no
-- CHECK constraints, no functional indexes, no MySQL-only collations.
--
-- Tables default to utf8mb4 / utf8mb4_unicode_ci, so message text round-trips emoji and CJK and a text search
-- ignores case. Identifier columns are utf8mb4_bin instead: an OA openid or a msgid that differ only in case are
-- different people and different messages, and a case-insensitive unique key would merge them.
--
-- Statements end with ';' at the end of a line (src/log/migrate.ts splits on that); comments take whole lines.
-- Every statement is idempotent (IF NOT EXISTS), because MySQL commits each DDL statement on its own: a start that
-- dies halfway through is completed by the next one.

CREATE TABLE IF NOT EXISTS customers (
  id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
  nickname VARCHAR(191) NULL,
  first_seen DATETIME(3) NOT NULL,
  last_seen DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY idx_customers_last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS identities (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  channel VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  account VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  customer_id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_identities_identity (channel, account, external_id),
  KEY idx_identities_customer (customer_id),
  CONSTRAINT fk_identities_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per inbound message and per outbound part. Newest first = highest id. Each filter of /admin/messages
-- has an index of its own; InnoDB appends the primary key to every secondary index, so "WHERE channel = ? AND
-- id < ? ORDER BY id DESC" walks idx_messages_channel in id order without sorting. idx_messages_msgid finds an
-- inbound row to settle. The text search (LIKE '%…%') has no index: it scans newest first and stops at the page.
-- row_key: 16 random bytes given at record time; INSERT IGNORE on it makes a re-sent batch write nothing twice.
CREATE TABLE IF NOT EXISTS messages (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  row_key BINARY(16) NOT NULL,
  at DATETIME(3) NOT NULL,
  direction VARCHAR(3) COLLATE utf8mb4_bin NOT NULL,
  channel VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  account VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  customer_id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  msgid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  type VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
  content MEDIUMTEXT NOT NULL,
  length INT UNSIGNED NOT NULL,
  status VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  agent VARCHAR(64) COLLATE utf8mb4_bin NULL,
  latency_ms INT UNSIGNED NULL,
  input_tokens INT UNSIGNED NULL,
  output_tokens INT UNSIGNED NULL,
  reply_to VARCHAR(128) COLLATE utf8mb4_bin NULL,
  errcode INT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_messages_row_key (row_key),
  KEY idx_messages_channel (channel),
  KEY idx_messages_account (account),
  KEY idx_messages_customer (customer_id),
  KEY idx_messages_direction (direction),
  KEY idx_messages_status (status),
  KEY idx_messages_at (at),
  KEY idx_messages_msgid (msgid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A settlement whose inbound row was not there yet (recorded by another process, or still in its buffer). The
-- writer that inserts the row applies it and deletes it; orphans older than a day go with the daily retention run.
-- `fields` says which optional columns the settlement sets: 1 agent, 2 latency_ms, 4 input_tokens, 8 output_tokens.
CREATE TABLE IF NOT EXISTS settlements (
  channel VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  account VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  msgid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  status VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  fields TINYINT UNSIGNED NOT NULL,
  agent VARCHAR(64) COLLATE utf8mb4_bin NULL,
  latency_ms INT UNSIGNED NULL,
  input_tokens INT UNSIGNED NULL,
  output_tokens INT UNSIGNED NULL,
  at DATETIME(3) NOT NULL,
  PRIMARY KEY (msgid, channel, account),
  KEY idx_settlements_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A reply whose attempts ran out. A second failure of the same inbound message replaces the first (REPLACE).
-- parts and part_ids hold JSON arrays as text (MariaDB's JSON type is LONGTEXT anyway).
CREATE TABLE IF NOT EXISTS failures (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at DATETIME(3) NOT NULL,
  channel VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
  account VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  customer_id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  msgid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  parts MEDIUMTEXT NOT NULL,
  sent INT UNSIGNED NOT NULL,
  part_ids TEXT NOT NULL,
  errcode INT NULL,
  reason TEXT NOT NULL,
  replays INT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uq_failures_message (channel, account, msgid),
  KEY idx_failures_customer (customer_id),
  KEY idx_failures_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
