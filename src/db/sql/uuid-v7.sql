-- Time-ordered ids made in SQL: a UUID v7 (RFC 9562, method 3), as PostgreSQL 15 has no
-- uuidv7(). The audit trail's trigger (audit-trail.sql) computes the prefix once per statement
-- and adds each row's random bits inline; uuid_v7() makes one whole id (tests and bench use it).
-- Last defined by drizzle/0009_audit_trail_cheaper.sql.

-- The time-ordered part of a UUID v7 for an instant, its first 8 bytes: 48 bits of Unix
-- milliseconds, then the version and 12 bits of the fraction of the millisecond. Two changes of
-- one payout, even within one millisecond, get ids in the order they happened, since
-- clock_timestamp() has microseconds. PL/pgSQL, not SQL: a SQL function that is not inlined is
-- planned on every call, ten times slower on the hot path.
CREATE OR REPLACE FUNCTION uuid_v7_prefix(at timestamptz) RETURNS bytea LANGUAGE plpgsql STABLE AS $$
DECLARE
  micros bigint := (date_part('epoch', at) * 1000000)::bigint;
BEGIN
  RETURN int8send((micros / 1000) << 16 | (x'7000'::int + (micros % 1000) * 4096 / 1000));
END $$;

CREATE OR REPLACE FUNCTION uuid_v7(at timestamptz) RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN encode(overlay(uuid_send(gen_random_uuid()) PLACING uuid_v7_prefix(at) FROM 1 FOR 8), 'hex')::uuid;
END $$;
