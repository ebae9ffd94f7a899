-- The schema the MariaDB/MySQL integration tests run against.
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  note VARCHAR(200) NOT NULL DEFAULT 'it\'s; fine',
  FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;

# seed data: restored after every truncate
CREATE TABLE plans (code VARCHAR(20) PRIMARY KEY, price_cents INT NOT NULL) ENGINE=InnoDB;
INSERT INTO plans VALUES ('free', 0), ('pro', 1500);
