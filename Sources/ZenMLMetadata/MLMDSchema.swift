import Foundation

/// ML Metadata's relational schema, version 10, as ml-metadata 1.17 creates it on SQLite and on
/// MySQL, and the enum values it stores. Keeping to it byte for byte is what lets TFX users open
/// our store with `ml_metadata.metadata_store.MetadataStore`.
///
/// The statements are copied from ml-metadata's `ml_metadata/util/metadata_source_query_config.cc`
/// (`kBaseQueryConfig` merged with `kSQLiteMetadataSourceQueryConfig` or
/// `kMySQLMetadataSourceQueryConfig`). The MySQL flavour differs from SQLite's in more than syntax:
/// - ids are `INT AUTO_INCREMENT` (32-bit) and times `BIGINT`;
/// - property `int_value` is `INT`, **32-bit**: ml-metadata itself cannot store an int property
///   outside ±2^31 on MySQL ("Out of range value for column 'int_value'"), which is why
///   ``PropertyValueCodec`` keeps wider integers in `double_value` on every backend;
/// - `string_value` is `MEDIUMTEXT` and `byte_value`/`proto_value` `MEDIUMBLOB` (16 MiB);
/// - secondary indexes are added with `ALTER TABLE … ADD INDEX` (not idempotent: a rerun meets
///   "Duplicate key name", which ml-metadata ignores, as we do), string columns are indexed by a
///   255-character prefix, and the property indexes are not partial (`WHERE … IS NOT NULL`);
/// - unique constraints carry names (`UniqueArtifactTypeName`, `UniqueEvent`, …).
enum MLMDSchema {
    static let version = 10

    /// Statements that create an empty version-10 store on SQLite, in ml-metadata's own order.
    static let createStatements: [String] = [
        "CREATE TABLE IF NOT EXISTS `Type` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `name` VARCHAR(255) NOT NULL,    `version` VARCHAR(255),    `type_kind` TINYINT(1) NOT NULL,    `description` TEXT,    `input_type` TEXT,    `output_type` TEXT,    `external_id` VARCHAR(255) UNIQUE );",
        "CREATE TABLE IF NOT EXISTS `TypeProperty` (    `type_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `data_type` INT NULL,  PRIMARY KEY (`type_id`, `name`));",
        "CREATE TABLE IF NOT EXISTS `ParentType` (    `type_id` INT NOT NULL,    `parent_type_id` INT NOT NULL,  PRIMARY KEY (`type_id`, `parent_type_id`));",
        "CREATE TABLE IF NOT EXISTS `Artifact` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `type_id` INT NOT NULL,    `uri` TEXT,    `state` INT,    `name` VARCHAR(255),    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` INT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,    UNIQUE(`type_id`, `name`)  );",
        "CREATE TABLE IF NOT EXISTS `ArtifactProperty` (    `artifact_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,    `byte_value` BLOB,    `proto_value` BLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`));",
        "CREATE TABLE IF NOT EXISTS `Execution` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `type_id` INT NOT NULL,    `last_known_state` INT,    `name` VARCHAR(255),    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` INT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,    UNIQUE(`type_id`, `name`)  );",
        "CREATE TABLE IF NOT EXISTS `ExecutionProperty` (    `execution_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,    `byte_value` BLOB,    `proto_value` BLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`execution_id`, `name`, `is_custom_property`));",
        "CREATE TABLE IF NOT EXISTS `Event` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `artifact_id` INT NOT NULL,    `execution_id` INT NOT NULL,    `type` INT NOT NULL,    `milliseconds_since_epoch` INT,    UNIQUE(`artifact_id`, `execution_id`, `type`)  );",
        "CREATE TABLE IF NOT EXISTS `EventPath` (    `event_id` INT NOT NULL,    `is_index_step` TINYINT(1) NOT NULL,    `step_index` INT,    `step_key` TEXT  );",
        "CREATE TABLE IF NOT EXISTS `MLMDEnv` (    `schema_version` INTEGER PRIMARY KEY  );",
        "CREATE TABLE IF NOT EXISTS `Context` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `type_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` INT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,    UNIQUE(`type_id`, `name`)  );",
        "CREATE TABLE IF NOT EXISTS `ContextProperty` (    `context_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` TEXT,    `byte_value` BLOB,    `proto_value` BLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`context_id`, `name`, `is_custom_property`));",
        "CREATE TABLE IF NOT EXISTS `ParentContext` (    `context_id` INT NOT NULL,    `parent_context_id` INT NOT NULL,  PRIMARY KEY (`context_id`, `parent_context_id`));",
        "CREATE TABLE IF NOT EXISTS `Association` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `context_id` INT NOT NULL,    `execution_id` INT NOT NULL,    UNIQUE(`context_id`, `execution_id`)  );",
        "CREATE TABLE IF NOT EXISTS `Attribution` (    `id` INTEGER PRIMARY KEY AUTOINCREMENT,    `context_id` INT NOT NULL,    `artifact_id` INT NOT NULL,    UNIQUE(`context_id`, `artifact_id`)  );",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_uri`  ON `Artifact`(`uri`);",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_create_time_since_epoch`  ON `Artifact`(`create_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_last_update_time_since_epoch`  ON `Artifact`(`last_update_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_event_execution_id`  ON `Event`(`execution_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_parentcontext_parent_context_id`  ON `ParentContext`(`parent_context_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_type_name`  ON `Type`(`name`);",
        "CREATE INDEX IF NOT EXISTS `idx_execution_create_time_since_epoch`  ON `Execution`(`create_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_execution_last_update_time_since_epoch`  ON `Execution`(`last_update_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_context_create_time_since_epoch`  ON `Context`(`create_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_context_last_update_time_since_epoch`  ON `Context`(`last_update_time_since_epoch`);",
        "CREATE INDEX IF NOT EXISTS `idx_eventpath_event_id`  ON `EventPath`(`event_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_property_int`  ON `ArtifactProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_property_double`  ON `ArtifactProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_property_string`  ON `ArtifactProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_execution_property_int`  ON `ExecutionProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_execution_property_double`  ON `ExecutionProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_execution_property_string`  ON `ExecutionProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_context_property_int`  ON `ContextProperty`(`name`, `is_custom_property`, `int_value`)  WHERE `int_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_context_property_double`  ON `ContextProperty`(`name`, `is_custom_property`, `double_value`)  WHERE `double_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_context_property_string`  ON `ContextProperty`(`name`, `is_custom_property`, `string_value`)  WHERE `string_value` IS NOT NULL;",
        "CREATE INDEX IF NOT EXISTS `idx_type_external_id`  ON `Type`(`external_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_artifact_external_id`  ON `Artifact`(`external_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_execution_external_id`  ON `Execution`(`external_id`);",
        "CREATE INDEX IF NOT EXISTS `idx_context_external_id`  ON `Context`(`external_id`);",
    ]

    /// Tables of a version-10 store on MySQL, in ml-metadata's own creation order (`InitMetadataSource`).
    static let mysqlCreateTableStatements: [String] = [
        " CREATE TABLE IF NOT EXISTS `Type` (    `id` INT PRIMARY KEY AUTO_INCREMENT,    `name` VARCHAR(255) NOT NULL,    `version` VARCHAR(255),    `type_kind` TINYINT(1) NOT NULL,    `description` TEXT,    `input_type` TEXT,    `output_type` TEXT,    `external_id` VARCHAR(255) UNIQUE  ); ",
        " CREATE TABLE IF NOT EXISTS `TypeProperty` (    `type_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `data_type` INT NULL,  PRIMARY KEY (`type_id`, `name`)); ",
        " CREATE TABLE IF NOT EXISTS `ParentType` (    `type_id` INT NOT NULL,    `parent_type_id` INT NOT NULL,  PRIMARY KEY (`type_id`, `parent_type_id`)); ",
        " CREATE TABLE IF NOT EXISTS `Artifact` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `type_id` INT NOT NULL,    `uri` TEXT,    `state` INT,    `name` VARCHAR(255),    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    CONSTRAINT UniqueArtifactTypeName UNIQUE(`type_id`, `name`)  ); ",
        " CREATE TABLE IF NOT EXISTS `ArtifactProperty` (    `artifact_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` MEDIUMTEXT,    `byte_value` MEDIUMBLOB,    `proto_value` MEDIUMBLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`)); ",
        " CREATE TABLE IF NOT EXISTS `Execution` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `type_id` INT NOT NULL,    `last_known_state` INT,    `name` VARCHAR(255),    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    CONSTRAINT UniqueExecutionTypeName UNIQUE(`type_id`, `name`)  ); ",
        " CREATE TABLE IF NOT EXISTS `ExecutionProperty` (    `execution_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` MEDIUMTEXT,    `byte_value` MEDIUMBLOB,    `proto_value` MEDIUMBLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`execution_id`, `name`, `is_custom_property`)); ",
        " CREATE TABLE IF NOT EXISTS `Event` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `artifact_id` INT NOT NULL,    `execution_id` INT NOT NULL,    `type` INT NOT NULL,    `milliseconds_since_epoch` BIGINT,    CONSTRAINT UniqueEvent UNIQUE(      `artifact_id`, `execution_id`, `type`)  ); ",
        " CREATE TABLE IF NOT EXISTS `EventPath` (    `event_id` INT NOT NULL,    `is_index_step` TINYINT(1) NOT NULL,    `step_index` INT,    `step_key` TEXT  ); ",
        " CREATE TABLE IF NOT EXISTS `MLMDEnv` (    `schema_version` INTEGER PRIMARY KEY  ); ",
        " CREATE TABLE IF NOT EXISTS `Context` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `type_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `external_id` VARCHAR(255) UNIQUE,    `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,    UNIQUE(`type_id`, `name`)  ); ",
        " CREATE TABLE IF NOT EXISTS `ContextProperty` (    `context_id` INT NOT NULL,    `name` VARCHAR(255) NOT NULL,    `is_custom_property` TINYINT(1) NOT NULL,    `int_value` INT,    `double_value` DOUBLE,    `string_value` MEDIUMTEXT,    `byte_value` MEDIUMBLOB,    `proto_value` MEDIUMBLOB,    `bool_value` BOOLEAN,  PRIMARY KEY (`context_id`, `name`, `is_custom_property`)); ",
        " CREATE TABLE IF NOT EXISTS `ParentContext` (    `context_id` INT NOT NULL,    `parent_context_id` INT NOT NULL,  PRIMARY KEY (`context_id`, `parent_context_id`)); ",
        " CREATE TABLE IF NOT EXISTS `Association` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `context_id` INT NOT NULL,    `execution_id` INT NOT NULL,    UNIQUE(`context_id`, `execution_id`)  ); ",
        " CREATE TABLE IF NOT EXISTS `Attribution` (    `id` INTEGER PRIMARY KEY AUTO_INCREMENT,    `context_id` INT NOT NULL,    `artifact_id` INT NOT NULL,    UNIQUE(`context_id`, `artifact_id`)  ); ",
    ]

    /// ml-metadata's `secondary_indices` for MySQL, in its order, each with the (table, index) pairs
    /// it adds: the statements are not idempotent, so the store adds only the missing ones.
    static let mysqlSecondaryIndexStatements: [(statement: String, indexes: [(table: String, name: String)])] = [
        (" ALTER TABLE `Artifact`   ADD INDEX `idx_artifact_uri`(`uri`(255)),   ADD INDEX `idx_artifact_create_time_since_epoch`              (`create_time_since_epoch`),   ADD INDEX `idx_artifact_last_update_time_since_epoch`              (`last_update_time_since_epoch`); ",
         [("Artifact", "idx_artifact_uri"), ("Artifact", "idx_artifact_create_time_since_epoch"), ("Artifact", "idx_artifact_last_update_time_since_epoch")]),
        (" ALTER TABLE `Event`  ADD INDEX `idx_event_execution_id` (`execution_id`); ", [("Event", "idx_event_execution_id")]),
        (" ALTER TABLE `ParentContext`  ADD INDEX    `idx_parentcontext_parent_context_id` (`parent_context_id`); ", [("ParentContext", "idx_parentcontext_parent_context_id")]),
        (" ALTER TABLE `Type`  ADD INDEX `idx_type_name` (`name`); ", [("Type", "idx_type_name")]),
        (" ALTER TABLE `Execution`   ADD INDEX `idx_execution_create_time_since_epoch`              (`create_time_since_epoch`),   ADD INDEX `idx_execution_last_update_time_since_epoch`              (`last_update_time_since_epoch`); ",
         [("Execution", "idx_execution_create_time_since_epoch"), ("Execution", "idx_execution_last_update_time_since_epoch")]),
        (" ALTER TABLE `Context`   ADD INDEX `idx_context_create_time_since_epoch`              (`create_time_since_epoch`),   ADD INDEX `idx_context_last_update_time_since_epoch`              (`last_update_time_since_epoch`); ",
         [("Context", "idx_context_create_time_since_epoch"), ("Context", "idx_context_last_update_time_since_epoch")]),
        (" ALTER TABLE `EventPath`   ADD INDEX `idx_eventpath_event_id`(`event_id`); ", [("EventPath", "idx_eventpath_event_id")]),
        (" ALTER TABLE `ArtifactProperty`   ADD INDEX `idx_artifact_property_int`(     `name`, `is_custom_property`, `int_value`); ", [("ArtifactProperty", "idx_artifact_property_int")]),
        (" ALTER TABLE `ArtifactProperty`   ADD INDEX `idx_artifact_property_double`(     `name`, `is_custom_property`, `double_value`); ", [("ArtifactProperty", "idx_artifact_property_double")]),
        (" ALTER TABLE `ArtifactProperty`   ADD INDEX `idx_artifact_property_string`(     `name`, `is_custom_property`, `string_value`(255)); ", [("ArtifactProperty", "idx_artifact_property_string")]),
        (" ALTER TABLE `ExecutionProperty`   ADD INDEX `idx_execution_property_int`(     `name`, `is_custom_property`, `int_value`); ", [("ExecutionProperty", "idx_execution_property_int")]),
        (" ALTER TABLE `ExecutionProperty`   ADD INDEX `idx_execution_property_double`(     `name`, `is_custom_property`, `double_value`); ", [("ExecutionProperty", "idx_execution_property_double")]),
        (" ALTER TABLE `ExecutionProperty`   ADD INDEX `idx_execution_property_string`(     `name`, `is_custom_property`, `string_value`(255)); ", [("ExecutionProperty", "idx_execution_property_string")]),
        (" ALTER TABLE `ContextProperty`   ADD INDEX `idx_context_property_int`(     `name`, `is_custom_property`, `int_value`); ", [("ContextProperty", "idx_context_property_int")]),
        (" ALTER TABLE `ContextProperty`   ADD INDEX `idx_context_property_double`(     `name`, `is_custom_property`, `double_value`); ", [("ContextProperty", "idx_context_property_double")]),
        (" ALTER TABLE `ContextProperty`   ADD INDEX `idx_context_property_string`(     `name`, `is_custom_property`, `string_value`(255)); ", [("ContextProperty", "idx_context_property_string")]),
        (" ALTER TABLE `Type`  ADD INDEX `idx_type_external_id` (`external_id`);", [("Type", "idx_type_external_id")]),
        (" ALTER TABLE `Artifact`  ADD INDEX `idx_artifact_external_id` (`external_id`);", [("Artifact", "idx_artifact_external_id")]),
        (" ALTER TABLE `Execution`  ADD INDEX `idx_execution_external_id` (`external_id`);", [("Execution", "idx_execution_external_id")]),
        (" ALTER TABLE `Context`  ADD INDEX `idx_context_external_id` (`external_id`);", [("Context", "idx_context_external_id")]),
    ]

    /// Indexes zenml-run adds to a SQLite store for its own queries, beyond ml-metadata's. Extra
    /// indexes are invisible to ml-metadata clients; its tables are never changed.
    static let sqliteExtraIndexStatements: [String] = []

    /// Indexes zenml-run adds to a MySQL store for its own queries, beyond ml-metadata's.
    static let mysqlExtraIndexes: [(table: String, name: String, statement: String)] = []

    /// Every table of a version-10 store.
    static let tableNames = [
        "Type", "TypeProperty", "ParentType", "Artifact", "ArtifactProperty", "Execution", "ExecutionProperty",
        "Event", "EventPath", "MLMDEnv", "Context", "ContextProperty", "ParentContext", "Association", "Attribution",
    ]

    /// The types ml-metadata seeds in every store it opens; a store without them cannot be opened
    /// by ml-metadata in read-only mode. (name, type_kind)
    static let builtinTypes: [(String, Int)] = [
        ("mlmd.Dataset", 1), ("mlmd.Model", 1), ("mlmd.Metrics", 1), ("mlmd.Statistics", 1),
        ("mlmd.Train", 0), ("mlmd.Transform", 0), ("mlmd.Process", 0), ("mlmd.Evaluate", 0), ("mlmd.Deploy", 0),
    ]

    /// `Type.type_kind`.
    enum TypeKind: Int { case execution = 0, artifact = 1, context = 2 }

    /// `TypeProperty.data_type` (ml_metadata.PropertyType).
    enum PropertyType: Int { case int = 1, double = 2, string = 3, structValue = 4, proto = 5, boolean = 6 }

    /// `Event.type` (ml_metadata.Event.Type).
    /// `internalInput` is what an execution used that is not one of its declared inputs: the
    /// bundle build a compiled step ran (keyed `build`).
    enum EventType: Int { case declaredOutput = 1, declaredInput = 2, input = 3, output = 4, internalInput = 5 }

    /// `Artifact.state` (ml_metadata.Artifact.State).
    enum ArtifactState: Int { case pending = 1, live = 2, markedForDeletion = 3, deleted = 4 }
}
