// Panel renderers keyed by kind; the names match pinwheel/panels (a test keeps them in step).
import * as filter_grid from "./filter_grid.js";
import * as group_activations from "./group_activations.js";
import * as topographic_map from "./topographic_map.js";
import * as reconstructions from "./reconstructions.js";
import * as sparsity from "./sparsity.js";
import * as tree_inhibition from "./tree_inhibition.js";
import * as interaction_matrix from "./interaction_matrix.js";
import * as drsae_units from "./drsae_units.js";

export const RENDERERS = { filter_grid, group_activations, topographic_map, reconstructions, sparsity,
  tree_inhibition, interaction_matrix, drsae_units };
