CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(200) NOT NULL) ENGINE=InnoDB;

DELIMITER //
CREATE TRIGGER customers_audit AFTER INSERT ON customers FOR EACH ROW
BEGIN
  INSERT INTO audit (what) VALUES (CONCAT('customer ', NEW.name));
END//
DELIMITER ;

CREATE VIEW customer_orders AS
  SELECT c.name, COUNT(o.id) AS orders FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name;
