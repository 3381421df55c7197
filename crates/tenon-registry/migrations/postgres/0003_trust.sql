-- Tenon registry, schema version 3: what signature verification found for
-- each stored version, and publishers bound to their signing keys.

-- JSON: the engine's verification record (signers, trust level, runtime
-- posture, when it was checked). NULL for versions stored before version 3.
ALTER TABLE plugin_versions ADD COLUMN verification TEXT;

-- One key per publisher and tenant: the key that first signed one of its
-- plugins, the key the trust policy names, or the key a verified rotation
-- statement moved it to. Kept when the publisher's plugins are uninstalled.
CREATE TABLE publisher_keys (
    tenant      TEXT COLLATE "C" NOT NULL,
    publisher   TEXT COLLATE "C" NOT NULL,
    public_key  TEXT   NOT NULL,   -- base64 of the 32-byte ed25519 key
    key_id      TEXT   NOT NULL,   -- 16 hex digits
    bound_by    TEXT   NOT NULL,   -- first-signature, policy or rotation
    bound_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, publisher)
);
