// Panel renderers keyed by kind; the names match pinwheel/panels (a test keeps them in step).
import * as filter_grid from "./filter_grid.js";

export const RENDERERS = { filter_grid };
