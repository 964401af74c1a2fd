Feature: Negotiating the return of the held, list by list and stage by stage
  As a case worker of a national information bureau taking part in talks on the return of the held,
  I want each side's lists tied to the people in the register whatever the spelling, and every handover counted,
  so that the register can say at any moment who has come back and who is still outstanding,
  which is what "all for all" asks.

  Background:
    Given the case worker has opened the negotiation "Talks on the held" between AM and AZ, mediated by RU, on the principle "all for all", on 2021-06-01

  Scenario: One agreement carried out in three stages, on different days and at different places
    Given the case worker has recorded that AZ captured "Aram Testyan", "Narek Probyan", "Vahe Samplov", "Gor Testyan", "Hayk Probyan" and "Tigran Samplov", prisoners of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded the agreement of 2021-06-20 by which AZ hands "Aram Testyan", "Narek Probyan", "Vahe Samplov", "Gor Testyan", "Hayk Probyan" and "Tigran Samplov" over to AM
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, under agreement 1 of the negotiation, in which AZ hands "Aram Testyan" and "Narek Probyan" over to AM
    Then the register answers 201
    And "Aram Testyan" and "Narek Probyan" are "repatriated", held by nobody
    And the reconciliation lists "Aram Testyan" and "Narek Probyan" as handed over
    And the reconciliation lists "Vahe Samplov", "Gor Testyan", "Hayk Probyan" and "Tigran Samplov" as outstanding

    When the case worker records the exchange on 2021-07-12 at "Goris", mediated by RU, under agreement 1 of the negotiation, in which AZ hands "Vahe Samplov" and "Gor Testyan" over to AM
    Then the register answers 201
    And the reconciliation lists "Aram Testyan", "Narek Probyan", "Vahe Samplov" and "Gor Testyan" as handed over
    And the reconciliation lists "Hayk Probyan" and "Tigran Samplov" as outstanding

    When the case worker records the exchange on 2021-07-25 at "the Lachin corridor", mediated by RU, under agreement 1 of the negotiation, in which AZ hands "Hayk Probyan" and "Tigran Samplov" over to AM
    Then the register answers 201
    And the reconciliation lists "Aram Testyan", "Narek Probyan", "Vahe Samplov", "Gor Testyan", "Hayk Probyan" and "Tigran Samplov" as agreed
    And the reconciliation lists "Aram Testyan", "Narek Probyan", "Vahe Samplov", "Gor Testyan", "Hayk Probyan" and "Tigran Samplov" as handed over
    And the reconciliation lists nobody as outstanding
    And the negotiation's exchanges are, oldest first:
      | on         | at                      | agreement | handed over |
      | 2021-07-03 | the border near Sadarak | 1         | 2           |
      | 2021-07-12 | Goris                   | 1         | 2           |
      | 2021-07-25 | the Lachin corridor     | 1         | 2           |
    And the summary counts 6 people returned in the negotiation

  Scenario: A list of 45 names yields 44 returns
    Given the case worker has recorded that AZ captured "Levon Testyan1" to "Levon Testyan45", prisoners of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded AM's list of 2021-06-10, naming the cases of "Levon Testyan1" to "Levon Testyan45"
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, in the negotiation, in which AZ hands "Levon Testyan1" to "Levon Testyan44" over to AM, and "Levon Testyan45" is absent
    Then the register answers 201
    And the exchange records 44 handed over by AZ to AM, 0 refused and 1 absent
    And the reconciliation counts 45 listed, 44 handed over, 1 absent and 1 outstanding
    And the reconciliation lists "Levon Testyan45" as absent
    And the reconciliation lists "Levon Testyan45" as outstanding
    And "Levon Testyan45" is still held by AZ at "Hadrut"
    And the summary counts 44 people returned in the negotiation
    And the summary counts, from AZ to AM, 1 exchange: 44 handed over, 0 refused and 1 absent

  Scenario: A party denies holding a person on the other side's list
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that the ICRC visited the person held by AZ at "Baku" on 2021-02-10
    And the case worker has recorded that AM captured "Elvin Probayev", a prisoner of war of AZ, at "Tavush" on 2020-11-10
    And the case worker has recorded AM's list of 2021-06-10, naming the cases of "Aram Testyan"
    And the case worker has recorded AZ's list of 2021-06-11, naming the cases of "Elvin Probayev"
    When the case worker records that AZ denied holding the person on 2021-06-15
    Then the register answers 201
    And the case is disputed about custody
    And the reconciliation lists "Aram Testyan" as only on AM's list
    And the reconciliation lists "Elvin Probayev" as only on AZ's list
    And the reconciliation lists "Aram Testyan" and "Elvin Probayev" as outstanding
    And in the reconciliation, "Aram Testyan" is outstanding, held by AZ, and marked disputed

  Scenario: The two sides' lists spell one person's name differently
    Given the case worker has recorded that AZ captured "Sedrak Grigoryan", a prisoner of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded that AZ captured "Narek Probyan", a prisoner of war of AM, at "Hadrut" on 2020-11-09
    When the case worker records AM's list of 2021-06-10, naming these people as spelled on it:
      | name            |
      | Григорян Седрак |
      | Пробян Нарек    |
    Then the register answers 201
    And the list's entry "Григорян Седрак" is matched to the case of "Sedrak Grigoryan"
    And the list's entry "Пробян Нарек" is matched to the case of "Narek Probyan"

    When the case worker records AZ's list of 2021-06-11, naming these people as spelled on it:
      | name             |
      | Qriqoryan Setrak |
    Then the register answers 201
    And the list's entry "Qriqoryan Setrak" is matched to the case of "Sedrak Grigoryan"
    And the reconciliation lists "Sedrak Grigoryan" as on every list
    And the reconciliation lists "Narek Probyan" as only on AM's list
    And the reconciliation lists nobody as unmatched
