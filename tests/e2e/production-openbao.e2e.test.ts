// The production journey on a real kind cluster, openbao distribution (tests/e2e/production-journey.ts).
import { productionJourney } from './production-journey.ts';

productionJourney('openbao');
