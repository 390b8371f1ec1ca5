// Panel renderers keyed by kind; the names match pinwheel/panels (a test keeps them in step).
import * as filter_grid from "./filter_grid.js";
import * as group_activations from "./group_activations.js";
import * as topographic_map from "./topographic_map.js";
import * as reconstructions from "./reconstructions.js";
import * as sparsity from "./sparsity.js";

export const RENDERERS = { filter_grid, group_activations, topographic_map, reconstructions, sparsity };
