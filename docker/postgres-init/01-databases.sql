-- One database per service, each owned by its own role (DESIGN §2: no service reads another's data).
CREATE ROLE payment LOGIN PASSWORD 'payment';
CREATE ROLE "order" LOGIN PASSWORD 'order';
CREATE ROLE delivery LOGIN PASSWORD 'delivery';
CREATE DATABASE payment OWNER payment;
CREATE DATABASE "order" OWNER "order";
CREATE DATABASE delivery OWNER delivery;
