// The production journey on a real kind cluster, vault distribution (tests/e2e/production-journey.ts).
import { productionJourney } from './production-journey.ts';

productionJourney('vault');
