CREATE TABLE customers (
    id      bigserial PRIMARY KEY,
    name    text NOT NULL
);

CREATE TABLE products (
    id        bigserial PRIMARY KEY,
    sku       text NOT NULL UNIQUE,
    price     numeric(10, 2) NOT NULL,
    discount  numeric(4, 2) NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount < 1),
    stock     integer NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    product_id   bigint REFERENCES products (id),
    total        numeric(12, 2) NOT NULL,
    placed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_statuses (code text PRIMARY KEY);
INSERT INTO order_statuses (code) VALUES ('pending'), ('confirmed'), ('cancelled');

ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'pending' REFERENCES order_statuses (code);
