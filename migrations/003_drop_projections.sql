-- The query tables (sandboxes, containers, images, runtime_settings) were written on every
-- append and read by nothing: the CRI answers from the machines' live states, which replay
-- rebuilds at every start. They cost about a fifth of each append; the log alone is the state.
DROP TABLE IF EXISTS sandboxes;
DROP TABLE IF EXISTS containers;
DROP TABLE IF EXISTS images;
DROP TABLE IF EXISTS runtime_settings;
