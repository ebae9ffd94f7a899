-- Cascaded changes fire no trigger in MySQL: truncate must still restore plan_features.
CREATE TABLE plan_features (
  plan VARCHAR(20) NOT NULL,
  feature VARCHAR(40) NOT NULL,
  PRIMARY KEY (plan, feature),
  FOREIGN KEY (plan) REFERENCES plans (code) ON DELETE CASCADE
) ENGINE=InnoDB;
INSERT INTO plan_features VALUES ('free', 'one project'), ('pro', 'unlimited projects');
